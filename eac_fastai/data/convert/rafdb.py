"""RAF-DB basic (`raf-basic/`) as a noisy-label CSV referencing the aligned images where they are.

`EmoLabel/list_patition_label.txt` holds `<name> <label 1-7>` per line for train and test images; EAC's
`noise01/02/03.txt` hold noisy labels for the train images in the same format. Images are
`Image/aligned/<stem>_aligned.jpg`. Labels 1..7 are, in order, `RAFDB_CLASSES`."""
import os
from pathlib import Path
import pandas as pd
from ...files import check_new_file, write_atomic
from ...errors import UserError
from .classes import RAFDB_CLASSES

__all__ = ['read_rafdb_labels', 'convert_rafdb']

def read_rafdb_labels(path) -> dict[str, int]:
    "`{image name: 0-based class}` from a RAF-DB label file (`<name> <label 1-7>` per line), checked line by line."
    path = Path(path)
    if not path.is_file(): raise UserError(f"{path}: RAF-DB label file not found")
    try: lines = path.read_text(encoding='utf-8').splitlines()
    except (OSError, UnicodeDecodeError) as e: raise UserError(f"{path}: cannot read the label file ({e})") from None
    out = {}
    for n, line in enumerate(lines, 1):
        if not line.strip(): continue
        parts = line.split()
        if len(parts) != 2: raise UserError(f"{path}:{n}: expected '<image name> <label 1-7>', got {line.strip()!r}")
        name, lab = parts
        if not (lab.isdigit() and 1 <= int(lab) <= len(RAFDB_CLASSES)):
            raise UserError(f"{path}:{n}: label {lab!r} is not in 1..7 (RAF-DB labels are 1-indexed)")
        if not name.startswith(('train_', 'test_')):
            raise UserError(f"{path}:{n}: image name {name!r} does not start with train_ or test_")
        if name in out: raise UserError(f"{path}:{n}: {name} is listed twice")
        out[name] = int(lab) - 1
    if not out: raise UserError(f"{path}: no labels in the file")
    return out

def convert_rafdb(raf_root, out_csv, noise_file=None, check_images:bool=True, overwrite:bool=False) -> pd.DataFrame:
    """Write RAF-DB as a noisy-label CSV at `out_csv` (image paths relative to its folder). Train labels come from
    `noise_file` when given (its test rows, if any, are ignored), test labels always from the clean file."""
    raf_root, out_csv = Path(raf_root), check_new_file(out_csv, overwrite)
    clean = read_rafdb_labels(raf_root/'EmoLabel'/'list_patition_label.txt')
    given = dict(clean)
    if noise_file is not None:
        noisy = read_rafdb_labels(noise_file)
        train = {k for k in clean if k.startswith('train_')}
        extra = sorted(k for k in noisy if k not in clean)
        missing = sorted(train - set(noisy))
        if extra or missing:
            raise UserError(f"{noise_file}: does not match {raf_root}/EmoLabel/list_patition_label.txt: "
                            + '; '.join(f"{what} {ks[:3]}{' …' if len(ks) > 3 else ''} ({len(ks)})"
                                        for what, ks in (('unknown images', extra),
                                                         ('train images without a label', missing)) if ks))
        given.update({k: v for k, v in noisy.items() if k.startswith('train_')})
    images = {k: raf_root/'Image'/'aligned'/f'{Path(k).stem}_aligned.jpg' for k in clean}
    if check_images:
        absent = [str(p) for p in images.values() if not p.is_file()]
        if absent: raise UserError(f"{raf_root}: {len(absent)} aligned image(s) missing, e.g. {absent[0]}; "
                                   "unpack raf-basic/Image/aligned or pass --no-check-images")
    base = out_csv.parent.resolve()
    df = pd.DataFrame(dict(image=[Path(os.path.relpath(images[k].resolve(), base)).as_posix() for k in clean],
                           label=[RAFDB_CLASSES[given[k]] for k in clean],
                           split=['train' if k.startswith('train_') else 'test' for k in clean],
                           clean_label=[RAFDB_CLASSES[clean[k]] for k in clean]))
    write_atomic(out_csv, df.to_csv(index=False))
    df.attrs.update(classes=list(RAFDB_CLASSES), skipped={})
    return df
