"FERPlus (fer2013.csv's pixels, fer2013new.csv's votes) as a noisy-label CSV and 48×48 grayscale PNGs."
import os
from pathlib import Path
import numpy as np, pandas as pd
from PIL import Image
from ...errors import UserError
from .classes import _fer_classes
from ...files import check_new_file
from .staging import _first, _frame, _images_dir, _ints, _map, _plain, _publish, _read_csv, _staging

__all__ = ['FERPLUS_VOTES', 'ferplus_winners', 'convert_ferplus']

# fer2013new.csv's vote columns
FERPLUS_VOTES = ('neutral', 'happiness', 'surprise', 'sadness', 'anger', 'disgust', 'fear', 'contempt', 'unknown', 'NF')
_FER_SPLITS = {'Training': 'train', 'PublicTest': 'valid', 'PrivateTest': 'test'}

def ferplus_winners(votes, mode:str='majority') -> np.ndarray:
    """Index into `FERPLUS_VOTES` of each row's winning category, -1 where none wins. 'majority' (Microsoft's FERPlus
    code): votes of 1 are dropped as outliers, then the top category needs more than half of the votes left, so a tie
    never wins. 'argmax' (SCN's author): the most-voted category; a tie at the top (or no votes) wins nothing."""
    v = np.asarray(votes, dtype=float)
    if mode == 'majority':
        v = np.where(v <= 1, 0., v)
        return np.where(v.max(1) > v.sum(1)/2, v.argmax(1), -1)
    if mode == 'argmax': return np.where((v == v.max(1, keepdims=True)).sum(1) == 1, v.argmax(1), -1)
    raise UserError(f"FERPlus mode {mode!r}: use 'majority' or 'argmax'")

def convert_ferplus(fer2013_csv, ferplus_csv, out_csv, mode:str='majority', classes:int=7, images=None,
                    num_workers:int=0, overwrite:bool=False) -> pd.DataFrame:
    """Write FERPlus as a noisy-label CSV at `out_csv`, its faces as 48×48 grayscale PNGs
    `<images>/<Usage>/<Image name>` next to it (`images` defaults to the CSV's stem). Pixels come from `fer2013.csv`,
    labels from the votes in `fer2013new.csv` (same rows, same order) by `mode` (see `ferplus_winners`);
    Training/PublicTest/PrivateTest → train/valid/test. Dropped, and counted in `df.attrs['skipped']`: rows without an
    image name, rows no category wins ('majority': none has more than half the votes; 'argmax': a tie at the top), rows
    won by unknown or NF (not a face), and with `classes=7` rows won by contempt. fer2013's own `emotion` label is not
    used."""
    if mode not in ('majority', 'argmax'): raise UserError(f"FERPlus mode {mode!r}: use 'majority' or 'argmax'")
    names, out_csv = _fer_classes(classes), check_new_file(out_csv, overwrite)
    dest = _images_dir(out_csv, images, (fer2013_csv, ferplus_csv), overwrite)
    fer, f1 = _read_csv(fer2013_csv, 'fer2013.csv', ('pixels', 'Usage'))
    plus, f2 = _read_csv(ferplus_csv, 'fer2013new.csv', ('Usage', 'Image name', *FERPLUS_VOTES))
    if len(fer) != len(plus): raise UserError(f"{ferplus_csv}: has {len(plus)} rows but {fer2013_csv} has {len(fer)}; "
                                              "give the fer2013new.csv of this fer2013.csv (same rows, same order)")
    usage, name = fer.Usage.str.strip(), plus['Image name'].str.strip()
    for path, u, first in ((fer2013_csv, usage, f1), (ferplus_csv, plus.Usage.str.strip(), f2)):
        if (bad := ~u.isin(list(_FER_SPLITS))).any():
            raise UserError(f"{path}:{_first(bad)+first}: Usage {u.iloc[_first(bad)]!r} is not one of "
                            f"{', '.join(_FER_SPLITS)}")
    if (bad := usage != plus.Usage.str.strip()).any():
        i = _first(bad)
        raise UserError(f"{ferplus_csv}:{i+f2}: Usage {plus.Usage.iloc[i]!r} differs from {usage.iloc[i]!r} in "
                        f"{fer2013_csv}:{i+f1}; the two files must list the same images in the same order")
    win = ferplus_winners(np.stack([_ints(plus, c, ferplus_csv, f2, lo=0) for c in FERPLUS_VOTES], 1), mode)
    # first reason that holds
    drop = {'no image name': (name == '').to_numpy(),
            'no majority' if mode == 'majority' else 'tied top votes': win < 0,
            'unknown or not a face': win >= 8, 'contempt (7 classes)': (win == 7) & (classes == 7)}
    why = np.select(list(drop.values()), list(drop), '')
    skipped = {r: int((why == r).sum()) for r in drop if (why == r).any()}
    keep = np.flatnonzero(why == '')
    if not len(keep): raise UserError(f"{ferplus_csv}: no image kept (dropped: {skipped})")
    rel = [f'{usage.iloc[i]}/{name.iloc[i]}' for i in keep]
    for i, r in zip(keep, rel):
        if not (_plain(name.iloc[i]) and name.iloc[i].lower().endswith('.png')):
            raise UserError(f"{ferplus_csv}:{i+f2}: Image name {name.iloc[i]!r} is not a plain file name "
                            "ending in .png")
    if (dup := pd.Series(rel).duplicated()).any():
        raise UserError(f"{ferplus_csv}:{keep[_first(dup)]+f2}: {rel[_first(dup)]} is listed twice")
    with _staging(dest) as tmp:
        for u in set(usage.iloc[keep]): (tmp/u).mkdir()
        def save(job):
            i, r = job
            px = fer.pixels.iloc[i].split()
            if len(px) != 48*48: raise UserError(f"{fer2013_csv}:{i+f1}: {len(px)} pixel values, expected 2304 (48×48)")
            try: a = np.array(px, dtype=np.int64)
            except ValueError: raise UserError(f"{fer2013_csv}:{i+f1}: pixels are not all integers") from None
            if a.min() < 0 or a.max() > 255: raise UserError(f"{fer2013_csv}:{i+f1}: pixel values outside 0..255")
            Image.fromarray(a.reshape(48, 48).astype(np.uint8)).save(tmp/r)
        _map(save, list(zip(keep, rel)), num_workers)
        base = Path(os.path.relpath(dest, out_csv.parent)).as_posix()
        df = _frame(((f'{base}/{r}', FERPLUS_VOTES[win[i]].capitalize(), _FER_SPLITS[usage.iloc[i]])
                     for i, r in zip(keep, rel)), names, skipped)
        _publish(tmp, dest, out_csv, df)
    return df
