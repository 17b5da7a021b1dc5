"An image tree (`<class>/<image>`, optionally below split folders) as a noisy-label CSV referencing the images."
import os
from pathlib import Path
import numpy as np, pandas as pd
from ...errors import UserError
from ...files import check_new_file, write_atomic
from .staging import IMAGE_EXTS, _frame, _image_files

__all__ = ['convert_imagefolder']

_SPLIT_DIRS = {'train': 'train', 'valid': 'valid', 'val': 'valid', 'test': 'test'}

def convert_imagefolder(root, out_csv, valid_pct:float=0., seed:int=42, overwrite:bool=False) -> pd.DataFrame:
    """Write an image tree as a noisy-label CSV at `out_csv` referencing the images in place: `root/<class>/<image>`
    (all train) or, when every top folder is a split (train, valid or val, test), `root/<split>/<class>/<image>`. Images
    are `IMAGE_EXTS` files (any case, any depth below the class folder; hidden ones skipped); classes are the sorted
    names of the class folders that hold images. `valid_pct` moves that share of each class's train images to valid
    (seeded)."""
    root, out_csv = Path(root), check_new_file(out_csv, overwrite)
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
    write_atomic(out_csv, df.to_csv(index=False))
    return df
