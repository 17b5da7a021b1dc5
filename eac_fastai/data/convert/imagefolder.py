"An image tree (`<class>/<image>`, optionally below split folders) as a noisy-label CSV referencing the images."
import os
from pathlib import Path
import numpy as np, pandas as pd
from ...errors import UserError
from ...files import check_new_file, write_atomic
from .staging import IMAGE_EXTS, _frame, _image_files, _images_dir, _map, _publish, _staging

__all__ = ['convert_imagefolder']

_SPLIT_DIRS = {'train': 'train', 'valid': 'valid', 'val': 'valid', 'test': 'test'}

def convert_imagefolder(root, out_csv, valid_pct:float=0., seed:int=42, overwrite:bool=False, faces:bool=False,
                        all_faces:bool=False, face_size:int=112, face_margin:float=0.1, images=None,
                        num_workers:int=0) -> pd.DataFrame:
    """Write an image tree as a noisy-label CSV at `out_csv` referencing the images in place: `root/<class>/<image>`
    (all train) or, when every top folder is a split (train, valid or val, test), `root/<split>/<class>/<image>`. Images
    are `IMAGE_EXTS` files (any case, any depth below the class folder; hidden ones skipped); classes are the sorted
    names of the class folders that hold images. `valid_pct` moves that share of each class's train images to valid
    (seeded).

    `faces`: the CSV references aligned face crops instead (`data.faces.align`, `face_size` pixels square,
    `face_margin`), written as PNGs `<images>/<the image's path below root>.png` next to it (`images` defaults to the
    CSV's stem): the largest face of each image, or every face (`_<k>` after the name) with `all_faces`. Images where
    no face is found are listed in `<CSV stem>_no_face.csv` (image, label, split) and counted in `attrs['skipped']`."""
    root, out_csv = Path(root), check_new_file(out_csv, overwrite)
    no_face_csv = check_new_file(out_csv.with_name(f'{out_csv.stem}_no_face.csv'), overwrite) if faces else None
    if not 0 <= valid_pct < 1: raise UserError(f"valid_pct={valid_pct}: give a share in [0, 1)")
    if not root.is_dir(): raise UserError(f"{root}: image folder not found")
    dirs = lambda d: sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith('.'))
    tops = dirs(root)
    is_split = [p.name.lower() in _SPLIT_DIRS for p in tops]
    if any(is_split) and not all(is_split):
        raise UserError(f"{root}: mixes split folders ({', '.join(p.name for p, s in zip(tops, is_split) if s)}) "
                        f"with other folders ({', '.join(p.name for p, s in zip(tops, is_split) if not s)}); "
                        "use root/<class>/<image> or root/<split>/<class>/<image>")
    rel = Path(os.path.relpath(root.resolve(), out_csv.parent.resolve())).as_posix()
    splits = [(p, _SPLIT_DIRS[p.name.lower()]) for p in tops] if tops and all(is_split) else [(root, 'train')]
    rows = [(f'{rel}/{p.relative_to(root).as_posix()}', c.name, split)
            for d, split in splits for c in dirs(d) for p in _image_files(c)]
    if not rows: raise UserError(f"{root}: no images ({', '.join(IMAGE_EXTS)}) in "
                                 f"{'<split>/' if splits[0][0] != root else ''}<class>/ folders")
    df = _frame(rows, sorted({r[1] for r in rows}))
    if valid_pct:
        if (df.split == 'valid').any(): raise UserError(f"{root}: has a valid/val folder already; drop valid_pct")
        rng = np.random.default_rng(seed)
        for c in df.attrs['classes']:
            idx = np.flatnonzero((df.label == c) & (df.split == 'train'))
            df.loc[rng.choice(idx, max(min(round(len(idx)*valid_pct), len(idx)-1), 0), replace=False),
                   'split'] = 'valid'
    if faces: return _face_crops(df, root, rel, out_csv, no_face_csv, all_faces, face_size, face_margin, images,
                                 num_workers, overwrite)
    write_atomic(out_csv, df.to_csv(index=False))
    return df

def _face_crops(df, root:Path, rel:str, out_csv:Path, no_face_csv:Path, all_faces:bool, size:int, margin:float, images,
                num_workers:int, overwrite:bool) -> pd.DataFrame:
    "`df`'s images replaced by their aligned face crops, written with the CSV; the images without a face listed apart."
    from ..core import load_rgb
    from ..faces import FaceDetector, align
    dest = _images_dir(out_csv, images, (root,), overwrite)
    if root.resolve() in dest.resolve().parents:
        raise UserError(f"{dest}: inside the photo folder {root}, where a later conversion would take the crops for "
                        "photos; write the CSV (or --images) outside it")
    detect = FaceDetector(threads=1 if num_workers > 0 else 0)     # worker threads share the session
    below = [Path(p[len(rel) + 1:]) for p in df.image]                 # each image's path below `root`
    stems = pd.Series([b.with_suffix('').as_posix() for b in below])
    names = [Path(f"{s}{'_' + b.suffix[1:] if dup else ''}")          # a.jpg and a.png: a_jpg.png, a_png.png
             for s, b, dup in zip(stems, below, stems.duplicated(False))]
    sources = [root/b for b in below]
    with _staging(dest) as tmp:
        def crop(j):
            img = load_rgb(sources[j])
            found = detect(img)[:None if all_faces else 1]
            out = [names[j].with_name(f"{names[j].name}{f'_{k}' if all_faces else ''}.png") for k in range(len(found))]
            for f, o in zip(found, out):
                (tmp/o).parent.mkdir(parents=True, exist_ok=True)
                align(img, f, size, margin).save(tmp/o)
            return out
        crops = _map(crop, range(len(df)), num_workers)
        base = Path(os.path.relpath(dest, out_csv.parent)).as_posix()
        rows = [(f'{base}/{o.as_posix()}', r.label, r.split) for r, out in zip(df.itertuples(), crops) for o in out]
        missing = df[[not c for c in crops]]
        if not rows: raise UserError(f"{root}: no face found in any of its {len(df)} images; "
                                     "convert without --faces to use the whole images")
        out = _frame(rows, df.attrs['classes'], {f'without a face, listed in {no_face_csv.name}': len(missing)}
                     if len(missing) else {})
        _publish(tmp, dest, out_csv, out)
    if len(missing): write_atomic(no_face_csv, missing.to_csv(index=False))
    elif no_face_csv.exists(): no_face_csv.unlink()                   # a stale list from an earlier conversion
    return out
