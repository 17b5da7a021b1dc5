"AffectNet (manually annotated) as a noisy-label CSV and face crops."
import os
from pathlib import Path, PurePosixPath
import pandas as pd
from PIL import Image
from ...errors import UserError
from .classes import _fer_classes
from ...files import check_new_file
from .staging import _frame, _images_dir, _ints, _map, _publish, _read_csv, _staging

__all__ = ['AFFECTNET_INDEX', 'convert_affectnet']

# AffectNet `expression` 0..7
AFFECTNET_INDEX = ('Neutral', 'Happiness', 'Sadness', 'Surprise', 'Fear', 'Disgust', 'Anger', 'Contempt')

_AFFECTNET_COLUMNS = ('subDirectory_filePath', 'face_x', 'face_y', 'face_width', 'face_height', 'facial_landmarks',
                      'expression', 'valence', 'arousal')

def _crop_face(job) -> str:
    "Crop `src` to the face box (clipped to the image), resize, save as `dst`; '' when written, else why not."
    src, dst, (x, y, w, h), size = job
    if not src.is_file(): return 'missing image'
    try:
        with Image.open(src) as im:
            box = (max(x, 0), max(y, 0), min(x+w, im.width), min(y+h, im.height))
            if box[2] <= box[0] or box[3] <= box[1]: return 'face box outside the image'
            face = im.crop(box).convert('RGB')
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError): return 'unreadable image'
    if size: face = face.resize((size, size), Image.Resampling.BILINEAR)
    dst.parent.mkdir(parents=True, exist_ok=True)
    face.save(dst, **({'quality': 95} if dst.suffix in ('.jpg', '.jpeg') else {}))
    return ''

def convert_affectnet(training_csv, validation_csv, images_root, out_csv, classes:int=7, size:int|None=None,
                      ext:str='.jpg', images=None, num_workers:int=0, overwrite:bool=False) -> pd.DataFrame:
    """Write AffectNet (manually annotated) as a noisy-label CSV at `out_csv`, with the face crops (HSE-asavchenko's
    preprocessing: the `face_x, face_y, face_width, face_height` box, clipped to the image) saved as `ext` files
    `<images>/<split>/<subDirectory_filePath>` next to it (`images` defaults to the CSV's stem), resized to
    `size`×`size` when given. `training.csv` → train, `validation.csv` (headerless, as shipped, or with a
    header) → test, as in the literature. Skipped, and counted in `df.attrs['skipped']`: expression 8-10 (none,
    uncertain, no face), contempt (7) with `classes=7`, non-positive face size, a box outside the image, a missing or
    unreadable image, a repeated row."""
    names, out_csv = _fer_classes(classes), check_new_file(out_csv, overwrite)
    if ext.lower() not in ('.jpg', '.jpeg', '.png'): raise UserError(f"ext {ext!r}: use .jpg or .png")
    if size is not None and size < 1:
        raise UserError(f"size={size}: give a positive size in pixels, or none to keep the crop size")
    images_root = Path(images_root)
    if not images_root.is_dir(): raise UserError(f"{images_root}: Manually_Annotated_Images folder not found")
    dest = _images_dir(out_csv, images, (training_csv, validation_csv, images_root), overwrite)
    jobs, why = [], {}
    for path, split in ((training_csv, 'train'), (validation_csv, 'test')):
        df, first = _read_csv(path, f'AffectNet {Path(path).name}', _AFFECTNET_COLUMNS[:5] + ('expression',),
                              _AFFECTNET_COLUMNS)
        expr = _ints(df, 'expression', path, first, lo=0, hi=10)
        x, y, w, h = (_ints(df, c, path, first) for c in _AFFECTNET_COLUMNS[1:5])
        seen = set()
        for i, p in enumerate(df.subDirectory_filePath.str.strip().str.replace('\\', '/')):
            src = PurePosixPath(p)
            if not p or src.is_absolute() or '..' in src.parts:
                raise UserError(f"{path}:{i+first}: subDirectory_filePath {p!r} is not a path inside "
                                "Manually_Annotated_Images")
            out = f'{split}/{src.with_suffix(ext.lower())}'
            r = ('no expression (8-10)' if expr[i] >= 8 else 'contempt (7 classes)' if expr[i] == 7 and classes == 7
                 else 'non-positive face size' if w[i] <= 0 or h[i] <= 0 else 'repeated row' if out in seen else '')
            if r: why[r] = why.get(r, 0) + 1
            else: seen.add(out); jobs.append((images_root/src, out, (x[i], y[i], w[i], h[i]),
                                              AFFECTNET_INDEX[expr[i]], split))
    with _staging(dest) as tmp:
        done = _map(_crop_face, [(src, tmp/out, box, size) for src, out, box, *_ in jobs], num_workers)
        for r in filter(None, done): why[r] = why.get(r, 0) + 1
        base = Path(os.path.relpath(dest, out_csv.parent)).as_posix()
        df = _frame(((f'{base}/{out}', label, split) for (_, out, _, label, split), r in zip(jobs, done) if not r),
                    names, why)
        if df.empty: raise UserError(f"{training_csv}, {validation_csv}: no usable row (skipped: {why}); "
                                     f"check the images folder {images_root}")
        _publish(tmp, dest, out_csv, df)
    return df
