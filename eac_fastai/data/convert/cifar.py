"CIFAR-100 (the `cifar-100-python/` pickles) as a noisy-label CSV and 32×32 RGB PNGs."
import os, re
from pathlib import Path
import numpy as np, pandas as pd
from PIL import Image
from ...errors import UserError
from ...safe_pickle import safe_load
from ...files import check_new_file
from .staging import _first, _frame, _images_dir, _map, _publish, _staging

__all__ = ['convert_cifar100']

def _str(s) -> str: return s.decode('latin1') if isinstance(s, bytes) else str(s)

def _entry(d, key:str, path):
    """`d[key]` of an unpickled CIFAR dict, whose keys are bytes (Python 2 pickles) or str; a `UserError` naming the
    file if absent."""
    if not isinstance(d, dict):
        raise UserError(f"{path}: holds a {type(d).__name__}, not the dict of a cifar-100-python file")
    for k in (key.encode(), key):
        if k in d: return d[k]
    raise UserError(f"{path}: no {key!r} entry (it has {', '.join(sorted(map(_str, d)))}); "
                    "give the cifar-100-python folder")

def convert_cifar100(cifar_root, out_csv, images=None, num_workers:int=0, overwrite:bool=False) -> pd.DataFrame:
    """Write CIFAR-100 (`cifar-100-python/`: the `train`, `test` and `meta` pickles, read with `safe_load`) as a
    noisy-label CSV at `out_csv`, its images as 32×32 RGB PNGs `<images>/<split>/<index>_<filename>` next to it
    (`images` defaults to the CSV's stem). Labels are the fine label names, in `meta`'s index order; train → train,
    test → test."""
    root, out_csv = Path(cifar_root), check_new_file(out_csv, overwrite)
    if not root.is_dir(): raise UserError(f"{root}: cifar-100-python folder not found")
    dest = _images_dir(out_csv, images, (root,), overwrite)
    names = [_str(n) for n in _entry(safe_load(root/'meta', encoding='bytes'), 'fine_label_names', root/'meta')]
    if not names or len(set(names)) != len(names):
        raise UserError(f"{root/'meta'}: fine_label_names is empty or repeats a name")
    parts = []
    for split in ('train', 'test'):
        path = root/split
        d = safe_load(path, encoding='bytes')
        data, labels = np.asarray(_entry(d, 'data', path)), np.asarray(_entry(d, 'fine_labels', path))
        if data.ndim != 2 or data.shape[1] != 3*32*32:
            raise UserError(f"{path}: 'data' has shape {data.shape}, expected N×3072 (32×32 R, G, B planes per row)")
        if data.dtype != np.uint8:
            if not (np.issubdtype(data.dtype, np.integer) and data.min() >= 0 and data.max() <= 255):
                raise UserError(f"{path}: 'data' holds {data.dtype} values, expected 0..255 integers")
            data = data.astype(np.uint8)
        if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
            raise UserError(f"{path}: 'fine_labels' should be {len(data)} integers, one per row of 'data'")
        if (bad := (labels < 0) | (labels >= len(names))).any():
            raise UserError(f"{path}: fine_labels[{_first(bad)}] = {labels[_first(bad)]} is not in 0..{len(names)-1}")
        files = ([_str(f) for f in _entry(d, 'filenames', path)] if any(k in d for k in (b'filenames', 'filenames'))
                 else [''] * len(data))
        stems = [re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(f).stem)[:80] for f in files]
        parts.append((split, data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1),
                      [f'{split}/{i:05d}{"_" if s else ""}{s}.png' for i, s in enumerate(stems)],
                      [names[l] for l in labels]))
    with _staging(dest) as tmp:
        for split, pixels, rels, _ in parts:
            (tmp/split).mkdir()
            _map(lambda j: Image.fromarray(pixels[j]).save(tmp/rels[j]), range(len(rels)), num_workers)
        base = Path(os.path.relpath(dest, out_csv.parent)).as_posix()
        df = _frame(((f'{base}/{r}', l, s) for s, _, rels, labs in parts for r, l in zip(rels, labs)), names)
        _publish(tmp, dest, out_csv, df)
    return df
