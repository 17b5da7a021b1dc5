"Tiny-ImageNet (`tiny-imagenet-200/`) as a noisy-label CSV referencing its images where they are."
import os
from pathlib import Path
import pandas as pd
from ...errors import UserError
from ...files import check_new_file, write_atomic
from .staging import _frame, _image_files, _plain

__all__ = ['convert_tinyimagenet']

def _lines(path, what:str) -> list[str]:
    "The lines of the text file `path`; a `UserError` if it is missing or unreadable."
    path = Path(path)
    if not path.is_file(): raise UserError(f"{path}: {what} not found")
    try: return path.read_text(encoding='utf-8').splitlines()
    except (OSError, UnicodeDecodeError) as e: raise UserError(f"{path}: cannot read {what} ({e})") from None

def convert_tinyimagenet(root, out_csv, check_images:bool=True, overwrite:bool=False) -> pd.DataFrame:
    """Write Tiny-ImageNet (`tiny-imagenet-200/`) as a noisy-label CSV at `out_csv` referencing its images in place:
    `train/<wnid>/images/*` → train, `val/images/*` labelled by `val/val_annotations.txt` → test (the official test
    images have no labels). Classes are the wnids, in `wnids.txt` order (`words.txt` names them and is not needed)."""
    root, out_csv = Path(root), check_new_file(out_csv, overwrite)
    if not root.is_dir(): raise UserError(f"{root}: tiny-imagenet-200 folder not found")
    wnids = {}
    for n, line in enumerate(_lines(root/'wnids.txt', 'the class list'), 1):
        if not (w := line.strip()): continue
        if len(w.split()) != 1 or not _plain(w):
            raise UserError(f"{root/'wnids.txt'}:{n}: expected one wnid per line, got {w!r}")
        if w in wnids: raise UserError(f"{root/'wnids.txt'}:{n}: {w} is listed twice (first on line {wnids[w]})")
        wnids[w] = n
    if not wnids: raise UserError(f"{root/'wnids.txt'}: no wnids in the file")
    if not (root/'train').is_dir(): raise UserError(f"{root/'train'}: folder not found")
    if extra := sorted(p.name for p in (root/'train').iterdir() if p.is_dir() and p.name not in wnids):
        raise UserError(f"{root/'train'}: folder(s) {', '.join(extra[:3])} are not wnids listed in {root/'wnids.txt'}")
    rel = Path(os.path.relpath(root.resolve(), out_csv.parent.resolve())).as_posix()
    rows = []
    for w in wnids:
        if not (files := _image_files(root/'train'/w/'images')):
            raise UserError(f"{root/'train'/w/'images'}: no images; every wnid in wnids.txt needs train/<wnid>/images/")
        rows += [(f'{rel}/{p.relative_to(root).as_posix()}', w, 'train') for p in files]
    ann, seen, absent = root/'val'/'val_annotations.txt', set(), []
    for n, line in enumerate(_lines(ann, 'the validation labels'), 1):
        if not line.strip(): continue
        parts = [s.strip() for s in line.split('\t')]
        if len(parts) < 2:
            raise UserError(f"{ann}:{n}: expected '<file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>', got {line.strip()!r}")
        name, w = parts[:2]
        if w not in wnids: raise UserError(f"{ann}:{n}: unknown wnid {w!r} (not in {root/'wnids.txt'})")
        if not _plain(name): raise UserError(f"{ann}:{n}: {name!r} is not a plain file name")
        if name in seen: raise UserError(f"{ann}:{n}: {name} is listed twice")
        seen.add(name)
        if check_images and not (root/'val'/'images'/name).is_file(): absent.append(f'{n}: {name}')
        rows.append((f'{rel}/val/images/{name}', w, 'test'))
    if absent: raise UserError(f"{ann}: {len(absent)} image(s) missing from {root/'val'/'images'}, "
                               f"e.g. line {absent[0]}; unpack val/images or pass --no-check-images")
    if not seen: raise UserError(f"{ann}: no labelled validation images")
    df = _frame(rows, wnids)
    write_atomic(out_csv, df.to_csv(index=False))
    return df
