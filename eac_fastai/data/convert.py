"""Dataset converters into the noisy-label CSV (`image,label,split`, image paths relative to the CSV's folder).

RAF-DB basic (`raf-basic/`): `EmoLabel/list_patition_label.txt` holds `<name> <label 1-7>` per line for
train and test images; EAC's `noise01/02/03.txt` hold noisy labels for the train images in the same format.
Images are `Image/aligned/<stem>_aligned.jpg`. Labels 1..7 are, in order, `RAFDB_CLASSES`.

FERPlus and AffectNet labels are written with RAF-DB's class names; their class order is `FERPLUS_CLASSES` /
`AFFECTNET_CLASSES` (= `RAFDB_CLASSES`, + `Contempt` with 8 classes). A CSV stores names only, so give that order
as the recipe's `data.classes`; every converter also leaves it in `df.attrs['classes']`, and the count of rows it
dropped on purpose, by reason, in `df.attrs['skipped']`. Converters that make images (FERPlus, AffectNet, CIFAR-100,
Fashion-MNIST)
fill a temporary folder next to the destination and rename it into place once everything is written; the others
(RAF-DB, Tiny-ImageNet, ImageFolder) reference the images where they are."""
import gzip, os, re, shutil, tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
import numpy as np, pandas as pd
from PIL import Image
from ..errors import UserError
from ..files import check_output_dir, write_atomic
from ..safe_pickle import safe_load

__all__ = ['RAFDB_CLASSES', 'FERPLUS_CLASSES', 'FERPLUS_CLASSES8', 'FERPLUS_VOTES', 'AFFECTNET_CLASSES', 'AFFECTNET_CLASSES8',
           'AFFECTNET_INDEX', 'IMAGE_EXTS', 'read_rafdb_labels', 'convert_rafdb', 'ferplus_winners', 'convert_ferplus',
           'convert_affectnet', 'convert_cifar100', 'FASHION_MNIST_CLASSES', 'FASHION_MNIST_DIR', 'read_idx', 'convert_fashion_mnist',
           'convert_tinyimagenet', 'convert_imagefolder', 'conversion_summary']

RAFDB_CLASSES = ('Surprise', 'Fear', 'Disgust', 'Happiness', 'Sadness', 'Anger', 'Neutral')
FERPLUS_CLASSES = AFFECTNET_CLASSES = RAFDB_CLASSES                    # 7-class setting (contempt dropped)
FERPLUS_CLASSES8 = AFFECTNET_CLASSES8 = RAFDB_CLASSES + ('Contempt',)  # 8-class setting
FERPLUS_VOTES = ('neutral', 'happiness', 'surprise', 'sadness', 'anger', 'disgust', 'fear', 'contempt', 'unknown', 'NF')  # fer2013new.csv
AFFECTNET_INDEX = ('Neutral', 'Happiness', 'Sadness', 'Surprise', 'Fear', 'Disgust', 'Anger', 'Contempt')  # AffectNet `expression` 0..7
FASHION_MNIST_CLASSES = ('T-shirt', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')
_FER_SPLITS = {'Training': 'train', 'PublicTest': 'valid', 'PrivateTest': 'test'}

def _check_csv(out_csv, overwrite:bool) -> Path:
    "`out_csv` as a `Path`, refused if it exists (unless `overwrite`) or cannot be written; checked before any work."
    out_csv = Path(out_csv)
    if out_csv.is_dir(): raise UserError(f"{out_csv}: is a folder; give a CSV file name")
    if out_csv.exists() and not overwrite: raise UserError(f"{out_csv}: already exists; choose another output or pass --overwrite")
    check_output_dir(out_csv.parent)
    return out_csv

def _images_dir(out_csv:Path, images, sources, overwrite:bool) -> Path:
    "The folder to fill: `images` relative to the CSV's folder (default: the CSV's stem), checked before any work."
    rel = Path(out_csv.stem if images is None else images)
    if rel.is_absolute() or not rel.parts or '..' in rel.parts:
        raise UserError(f"images folder {str(images)!r}: give a folder name relative to the CSV's folder, without '..'")
    dest = out_csv.parent/rel
    if dest.exists() and not dest.is_dir(): raise UserError(f"{dest}: is a file; choose another images folder")
    if dest.exists() and not overwrite: raise UserError(f"{dest}: images folder already exists; choose another one or pass --overwrite")
    d = dest.resolve()
    for s in sources:
        if d == Path(s).resolve() or d in Path(s).resolve().parents: raise UserError(f"{dest}: would replace the input {s}; choose another images folder")
    return dest

@contextmanager
def _staging(dest:Path):
    "A new temporary folder next to `dest` to fill; removed on exit unless `_publish` moved it into place."
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f'.{dest.name}.tmp-'))
    try: yield tmp
    finally: shutil.rmtree(tmp, ignore_errors=True)

def _publish(tmp:Path, dest:Path, out_csv:Path, df:pd.DataFrame):
    "Rename the filled `tmp` to `dest`, then write `out_csv`; an old `dest` is deleted only after both succeeded, else put back."
    old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f'.{dest.name}.old-'))
    moved = False
    try:
        if dest.exists(): os.replace(dest, old/dest.name)
        os.replace(tmp, dest); moved = True
        write_atomic(out_csv, df.to_csv(index=False))
    except BaseException:
        if moved: os.replace(dest, tmp)
        if (old/dest.name).exists(): os.replace(old/dest.name, dest)
        raise
    finally: shutil.rmtree(old, ignore_errors=True)

def _map(f, items, num_workers:int=0) -> list:
    "`[f(o) for o in items]`, on `num_workers` threads when > 0 (PIL releases the GIL while it decodes and encodes)."
    if num_workers <= 0: return [f(o) for o in items]
    with ThreadPoolExecutor(num_workers) as ex: return list(ex.map(f, items))

def _frame(rows, classes, skipped=None) -> pd.DataFrame:
    "The CSV frame of `(image, label, split)` rows, with the class order and the skipped counts in `attrs`."
    df = pd.DataFrame(list(rows), columns=['image', 'label', 'split'])
    df.attrs.update(classes=list(classes), skipped=dict(skipped or {}))
    return df

def _first(mask) -> int:
    "Position of the first True in `mask`."
    return int(np.flatnonzero(np.asarray(mask))[0])

def _plain(name:str) -> bool:
    "Whether `name` is a bare file name (no folder, not hidden)."
    return bool(name) and name == Path(name).name and not name.startswith('.') and '\\' not in name

def _str(s) -> str: return s.decode('latin1') if isinstance(s, bytes) else str(s)

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
        if not name.startswith(('train_', 'test_')): raise UserError(f"{path}:{n}: image name {name!r} does not start with train_ or test_")
        if name in out: raise UserError(f"{path}:{n}: {name} is listed twice")
        out[name] = int(lab) - 1
    if not out: raise UserError(f"{path}: no labels in the file")
    return out

def convert_rafdb(raf_root, out_csv, noise_file=None, check_images:bool=True, overwrite:bool=False) -> pd.DataFrame:
    """Write RAF-DB as a noisy-label CSV at `out_csv` (image paths relative to its folder). Train labels come from
    `noise_file` when given (its test rows, if any, are ignored), test labels always from the clean file."""
    raf_root, out_csv = Path(raf_root), _check_csv(out_csv, overwrite)
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
                                        for what, ks in (('unknown images', extra), ('train images without a label', missing)) if ks))
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

def _read_csv(path, what:str, cols, names=None) -> tuple[pd.DataFrame, int]:
    """`path` read as text columns, and the file line of its first row. Column names are stripped; a file whose first
    line names none of `cols` is read as headerless with the columns `names`, when given."""
    path = Path(path)
    if not path.is_file(): raise UserError(f"{path}: {what} not found" + (" (it is a folder)" if path.is_dir() else ""))
    try: df = pd.read_csv(path, dtype=str, keep_default_na=False, header=None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as e:
        raise UserError(f"{path}: cannot parse as CSV ({str(e).splitlines()[0]})") from None
    head = [str(c).strip() for c in df.iloc[0]]
    if names is not None and not set(head) & set(cols) and len(head) == len(names): df.columns, first = list(names), 1
    else: df, df.columns, first = df.iloc[1:].reset_index(drop=True), head, 2
    if missing := [c for c in cols if c not in df.columns]:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} in its header line; a {what} has {', '.join(cols)}")
    if df.empty: raise UserError(f"{path}: has a header but no rows")
    return df, first

def _ints(df:pd.DataFrame, col:str, path, first:int, lo:int|None=None, hi:int|None=None) -> np.ndarray:
    "Column `col` as integers in `lo..hi`; else a `UserError` naming the file and line of the first bad value."
    v = pd.to_numeric(df[col].str.strip(), errors='coerce').to_numpy(dtype=float)
    bad = np.isnan(v) | (v != np.round(v)) | ((v < lo) if lo is not None else False) | ((v > hi) if hi is not None else False)
    if bad.any():
        i = _first(bad)
        want = 'an integer' + (f' in {lo}..{hi}' if hi is not None else ' >= 0' if lo == 0 else '')
        raise UserError(f"{path}:{i+first}: `{col}` is {df[col].iloc[i]!r}, expected {want}")
    return v.astype(np.int64)

def _fer_classes(classes:int) -> tuple:
    if classes not in (7, 8): raise UserError(f"classes={classes}: use 7 (no contempt) or 8 (with contempt)")
    return FERPLUS_CLASSES if classes == 7 else FERPLUS_CLASSES8

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

def convert_ferplus(fer2013_csv, ferplus_csv, out_csv, mode:str='majority', classes:int=7, images=None, num_workers:int=0,
                    overwrite:bool=False) -> pd.DataFrame:
    """Write FERPlus as a noisy-label CSV at `out_csv`, its faces as 48×48 grayscale PNGs `<images>/<Usage>/<Image name>`
    next to it (`images` defaults to the CSV's stem). Pixels come from `fer2013.csv`, labels from the votes in
    `fer2013new.csv` (same rows, same order) by `mode` (see `ferplus_winners`); Training/PublicTest/PrivateTest →
    train/valid/test. Dropped, and counted in `df.attrs['skipped']`: rows without an image name, rows no category wins
    ('majority': none has more than half the votes; 'argmax': a tie at the top), rows won by unknown or NF (not a face),
    and with `classes=7` rows won by contempt. fer2013's own `emotion` label is not used."""
    if mode not in ('majority', 'argmax'): raise UserError(f"FERPlus mode {mode!r}: use 'majority' or 'argmax'")
    names, out_csv = _fer_classes(classes), _check_csv(out_csv, overwrite)
    dest = _images_dir(out_csv, images, (fer2013_csv, ferplus_csv), overwrite)
    fer, f1 = _read_csv(fer2013_csv, 'fer2013.csv', ('pixels', 'Usage'))
    plus, f2 = _read_csv(ferplus_csv, 'fer2013new.csv', ('Usage', 'Image name', *FERPLUS_VOTES))
    if len(fer) != len(plus): raise UserError(f"{ferplus_csv}: has {len(plus)} rows but {fer2013_csv} has {len(fer)}; "
                                              "give the fer2013new.csv of this fer2013.csv (same rows, same order)")
    usage, name = fer.Usage.str.strip(), plus['Image name'].str.strip()
    for path, u, first in ((fer2013_csv, usage, f1), (ferplus_csv, plus.Usage.str.strip(), f2)):
        if (bad := ~u.isin(list(_FER_SPLITS))).any():
            raise UserError(f"{path}:{_first(bad)+first}: Usage {u.iloc[_first(bad)]!r} is not one of {', '.join(_FER_SPLITS)}")
    if (bad := usage != plus.Usage.str.strip()).any():
        i = _first(bad)
        raise UserError(f"{ferplus_csv}:{i+f2}: Usage {plus.Usage.iloc[i]!r} differs from {usage.iloc[i]!r} in {fer2013_csv}:{i+f1}; "
                        "the two files must list the same images in the same order")
    win = ferplus_winners(np.stack([_ints(plus, c, ferplus_csv, f2, lo=0) for c in FERPLUS_VOTES], 1), mode)
    drop = {'no image name': (name == '').to_numpy(), 'no majority' if mode == 'majority' else 'tied top votes': win < 0,
            'unknown or not a face': win >= 8, 'contempt (7 classes)': (win == 7) & (classes == 7)}   # first reason that holds
    why = np.select(list(drop.values()), list(drop), '')
    skipped = {r: int((why == r).sum()) for r in drop if (why == r).any()}
    keep = np.flatnonzero(why == '')
    if not len(keep): raise UserError(f"{ferplus_csv}: no image kept (dropped: {skipped})")
    rel = [f'{usage.iloc[i]}/{name.iloc[i]}' for i in keep]
    for i, r in zip(keep, rel):
        if not (_plain(name.iloc[i]) and name.iloc[i].lower().endswith('.png')):
            raise UserError(f"{ferplus_csv}:{i+f2}: Image name {name.iloc[i]!r} is not a plain file name ending in .png")
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
        df = _frame(((f'{base}/{r}', FERPLUS_VOTES[win[i]].capitalize(), _FER_SPLITS[usage.iloc[i]]) for i, r in zip(keep, rel)),
                    names, skipped)
        _publish(tmp, dest, out_csv, df)
    return df

_AFFECTNET_COLUMNS = ('subDirectory_filePath', 'face_x', 'face_y', 'face_width', 'face_height', 'facial_landmarks', 'expression',
                      'valence', 'arousal')

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

def convert_affectnet(training_csv, validation_csv, images_root, out_csv, classes:int=7, size:int|None=None, ext:str='.jpg',
                      images=None, num_workers:int=0, overwrite:bool=False) -> pd.DataFrame:
    """Write AffectNet (manually annotated) as a noisy-label CSV at `out_csv`, with the face crops (HSE-asavchenko's
    preprocessing: the `face_x, face_y, face_width, face_height` box, clipped to the image) saved as `ext` files
    `<images>/<split>/<subDirectory_filePath>` next to it (`images` defaults to the CSV's stem), resized to `size`×`size`
    when given. `training.csv` → train, `validation.csv` (headerless, as shipped, or with a header) → test, as in the
    literature. Skipped, and counted in `df.attrs['skipped']`: expression 8-10 (none, uncertain, no face), contempt
    (7) with `classes=7`, non-positive face size, a box outside the image, a missing or unreadable image, a repeated row."""
    names, out_csv = _fer_classes(classes), _check_csv(out_csv, overwrite)
    if ext.lower() not in ('.jpg', '.jpeg', '.png'): raise UserError(f"ext {ext!r}: use .jpg or .png")
    if size is not None and size < 1: raise UserError(f"size={size}: give a positive size in pixels, or none to keep the crop size")
    images_root = Path(images_root)
    if not images_root.is_dir(): raise UserError(f"{images_root}: Manually_Annotated_Images folder not found")
    dest = _images_dir(out_csv, images, (training_csv, validation_csv, images_root), overwrite)
    jobs, why = [], {}
    for path, split in ((training_csv, 'train'), (validation_csv, 'test')):
        df, first = _read_csv(path, f'AffectNet {Path(path).name}', _AFFECTNET_COLUMNS[:5] + ('expression',), _AFFECTNET_COLUMNS)
        expr = _ints(df, 'expression', path, first, lo=0, hi=10)
        x, y, w, h = (_ints(df, c, path, first) for c in _AFFECTNET_COLUMNS[1:5])
        seen = set()
        for i, p in enumerate(df.subDirectory_filePath.str.strip().str.replace('\\', '/')):
            src = PurePosixPath(p)
            if not p or src.is_absolute() or '..' in src.parts:
                raise UserError(f"{path}:{i+first}: subDirectory_filePath {p!r} is not a path inside Manually_Annotated_Images")
            out = f'{split}/{src.with_suffix(ext.lower())}'
            r = ('no expression (8-10)' if expr[i] >= 8 else 'contempt (7 classes)' if expr[i] == 7 and classes == 7
                 else 'non-positive face size' if w[i] <= 0 or h[i] <= 0 else 'repeated row' if out in seen else '')
            if r: why[r] = why.get(r, 0) + 1
            else: seen.add(out); jobs.append((images_root/src, out, (x[i], y[i], w[i], h[i]), AFFECTNET_INDEX[expr[i]], split))
    with _staging(dest) as tmp:
        done = _map(_crop_face, [(src, tmp/out, box, size) for src, out, box, *_ in jobs], num_workers)
        for r in filter(None, done): why[r] = why.get(r, 0) + 1
        base = Path(os.path.relpath(dest, out_csv.parent)).as_posix()
        df = _frame(((f'{base}/{out}', label, split) for (_, out, _, label, split), r in zip(jobs, done) if not r), names, why)
        if df.empty: raise UserError(f"{training_csv}, {validation_csv}: no usable row (skipped: {why}); check the images folder {images_root}")
        _publish(tmp, dest, out_csv, df)
    return df

def _entry(d, key:str, path):
    "`d[key]` of an unpickled CIFAR dict, whose keys are bytes (Python 2 pickles) or str; a `UserError` naming the file if absent."
    if not isinstance(d, dict): raise UserError(f"{path}: holds a {type(d).__name__}, not the dict of a cifar-100-python file")
    for k in (key.encode(), key):
        if k in d: return d[k]
    raise UserError(f"{path}: no {key!r} entry (it has {', '.join(sorted(map(_str, d)))}); give the cifar-100-python folder")

def convert_cifar100(cifar_root, out_csv, images=None, num_workers:int=0, overwrite:bool=False) -> pd.DataFrame:
    """Write CIFAR-100 (`cifar-100-python/`: the `train`, `test` and `meta` pickles, read with `safe_load`) as a noisy-label
    CSV at `out_csv`, its images as 32×32 RGB PNGs `<images>/<split>/<index>_<filename>` next to it (`images` defaults
    to the CSV's stem). Labels are the fine label names, in `meta`'s index order; train → train, test → test."""
    root, out_csv = Path(cifar_root), _check_csv(out_csv, overwrite)
    if not root.is_dir(): raise UserError(f"{root}: cifar-100-python folder not found")
    dest = _images_dir(out_csv, images, (root,), overwrite)
    names = [_str(n) for n in _entry(safe_load(root/'meta', encoding='bytes'), 'fine_label_names', root/'meta')]
    if not names or len(set(names)) != len(names): raise UserError(f"{root/'meta'}: fine_label_names is empty or repeats a name")
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
        files = [_str(f) for f in _entry(d, 'filenames', path)] if any(k in d for k in (b'filenames', 'filenames')) else [''] * len(data)
        stems = [re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(f).stem)[:80] for f in files]
        parts.append((split, data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1),
                      [f'{split}/{i:05d}{"_" if s else ""}{s}.png' for i, s in enumerate(stems)], [names[l] for l in labels]))
    with _staging(dest) as tmp:
        for split, pixels, rels, _ in parts:
            (tmp/split).mkdir()
            _map(lambda j: Image.fromarray(pixels[j]).save(tmp/rels[j]), range(len(rels)), num_workers)
        base = Path(os.path.relpath(dest, out_csv.parent)).as_posix()
        df = _frame(((f'{base}/{r}', l, s) for s, _, rels, labs in parts for r, l in zip(rels, labs)), names)
        _publish(tmp, dest, out_csv, df)
    return df

FASHION_MNIST_DIR = Path('/usr/share/datasets/fashion-mnist')    # Debian's dataset-fashion-mnist
_IDX_TYPES = {0x08: np.uint8}

def read_idx(path) -> np.ndarray:
    "The array in an IDX file (MNIST's format: big-endian magic `0 0 type ndim`, dimensions, data), gzipped or not."
    path = Path(path)
    if not path.is_file(): raise UserError(f"{path}: IDX file not found")
    try:
        with (gzip.open if path.suffix == '.gz' else open)(path, 'rb') as f: raw = f.read()
    except (OSError, EOFError) as e: raise UserError(f"{path}: cannot read ({e})") from None
    if len(raw) < 4 or raw[:2] != b'\0\0' or raw[2] not in _IDX_TYPES:
        raise UserError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4+4*i:8+4*i], 'big') for i in range(ndim))
    start = 4 + 4*ndim
    if len(raw) - start != int(np.prod(dims)): raise UserError(f"{path}: {len(raw)-start} data bytes for dimensions {dims}; the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=_IDX_TYPES[raw[2]], offset=start).reshape(dims)

def convert_fashion_mnist(root, out_csv, train_subset:int|None=None, seed:int=0, images=None, num_workers:int=0,
                          overwrite:bool=False) -> pd.DataFrame:
    """Write Fashion-MNIST (the four IDX files `train-images-idx3-ubyte.gz` … `t10k-labels-idx1-ubyte.gz` in `root`, as
    Debian's `dataset-fashion-mnist` installs them in `FASHION_MNIST_DIR`) as a noisy-label CSV at `out_csv` and 28×28
    grayscale PNGs `<images>/<split>/<index>.png`. Train → train, t10k → test. `train_subset`: keep that many training
    images, the same number of each class (seeded)."""
    root, out_csv = Path(root), _check_csv(out_csv, overwrite)
    if not root.is_dir(): raise UserError(f"{root}: Fashion-MNIST folder not found (Debian: apt-get install dataset-fashion-mnist)")
    dest = _images_dir(out_csv, images, (root,), overwrite)
    parts = []
    for split, stem in (('train', 'train'), ('test', 't10k')):
        x, y = read_idx(root/f'{stem}-images-idx3-ubyte.gz'), read_idx(root/f'{stem}-labels-idx1-ubyte.gz')
        if x.ndim != 3 or y.shape != (len(x),): raise UserError(f"{root}: {stem} images {x.shape} and labels {y.shape} do not match")
        if (bad := y >= len(FASHION_MNIST_CLASSES)).any(): raise UserError(f"{root}: {stem} label #{_first(bad)} is {y[_first(bad)]}, not in 0..9")
        keep = np.arange(len(y))
        if split == 'train' and train_subset is not None: keep = _balanced_subset(y, train_subset, seed, root)
        parts.append((split, x, keep, [FASHION_MNIST_CLASSES[l] for l in y[keep]]))
    with _staging(dest) as tmp:
        for split, x, keep, _ in parts:
            (tmp/split).mkdir()
            _map(lambda i: Image.fromarray(x[i]).save(tmp/split/f'{i:05d}.png'), keep, num_workers)
        base = Path(os.path.relpath(dest, out_csv.parent)).as_posix()
        df = _frame(((f'{base}/{s}/{i:05d}.png', l, s) for s, _, keep, labs in parts for i, l in zip(keep, labs)), FASHION_MNIST_CLASSES)
        _publish(tmp, dest, out_csv, df)
    return df

def _balanced_subset(y:np.ndarray, n:int, seed:int, root) -> np.ndarray:
    "Sorted indices of `n` items of `y`, `n / classes` drawn at random from each class."
    k = len(FASHION_MNIST_CLASSES)
    if n < k or n % k or n // k > np.bincount(y, minlength=k).min():
        raise UserError(f"--train-subset {n}: give a multiple of {k} of at most {k*np.bincount(y, minlength=k).min()} (per class: {root})")
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), n//k, replace=False) for c in range(k)]))

def _lines(path, what:str) -> list[str]:
    "The lines of the text file `path`; a `UserError` if it is missing or unreadable."
    path = Path(path)
    if not path.is_file(): raise UserError(f"{path}: {what} not found")
    try: return path.read_text(encoding='utf-8').splitlines()
    except (OSError, UnicodeDecodeError) as e: raise UserError(f"{path}: cannot read {what} ({e})") from None

def _image_files(folder:Path) -> list[Path]:
    "Image files (by `IMAGE_EXTS`, any case) at any depth under `folder`, skipping hidden ones, sorted."
    return sorted(p for p in folder.rglob('*') if p.suffix.lower() in IMAGE_EXTS and p.is_file()
                  and not any(s.startswith('.') for s in p.relative_to(folder).parts))

def convert_tinyimagenet(root, out_csv, check_images:bool=True, overwrite:bool=False) -> pd.DataFrame:
    """Write Tiny-ImageNet (`tiny-imagenet-200/`) as a noisy-label CSV at `out_csv` referencing its images in place:
    `train/<wnid>/images/*` → train, `val/images/*` labelled by `val/val_annotations.txt` → test (the official test
    images have no labels). Classes are the wnids, in `wnids.txt` order (`words.txt` names them and is not needed)."""
    root, out_csv = Path(root), _check_csv(out_csv, overwrite)
    if not root.is_dir(): raise UserError(f"{root}: tiny-imagenet-200 folder not found")
    wnids = {}
    for n, line in enumerate(_lines(root/'wnids.txt', 'the class list'), 1):
        if not (w := line.strip()): continue
        if len(w.split()) != 1 or not _plain(w): raise UserError(f"{root/'wnids.txt'}:{n}: expected one wnid per line, got {w!r}")
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
        if len(parts) < 2: raise UserError(f"{ann}:{n}: expected '<file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>', got {line.strip()!r}")
        name, w = parts[:2]
        if w not in wnids: raise UserError(f"{ann}:{n}: unknown wnid {w!r} (not in {root/'wnids.txt'})")
        if not _plain(name): raise UserError(f"{ann}:{n}: {name!r} is not a plain file name")
        if name in seen: raise UserError(f"{ann}:{n}: {name} is listed twice")
        seen.add(name)
        if check_images and not (root/'val'/'images'/name).is_file(): absent.append(f'{n}: {name}')
        rows.append((f'{rel}/val/images/{name}', w, 'test'))
    if absent: raise UserError(f"{ann}: {len(absent)} image(s) missing from {root/'val'/'images'}, e.g. line {absent[0]}; "
                               "unpack val/images or pass --no-check-images")
    if not seen: raise UserError(f"{ann}: no labelled validation images")
    df = _frame(rows, wnids)
    write_atomic(out_csv, df.to_csv(index=False))
    return df

_SPLIT_DIRS = {'train': 'train', 'valid': 'valid', 'val': 'valid', 'test': 'test'}

def convert_imagefolder(root, out_csv, valid_pct:float=0., seed:int=42, overwrite:bool=False) -> pd.DataFrame:
    """Write an image tree as a noisy-label CSV at `out_csv` referencing the images in place: `root/<class>/<image>` (all
    train) or, when every top folder is a split (train, valid or val, test), `root/<split>/<class>/<image>`. Images are
    `IMAGE_EXTS` files (any case, any depth below the class folder; hidden ones skipped); classes are the sorted names of
    the class folders that hold images. `valid_pct` moves that share of each class's train images to valid (seeded)."""
    root, out_csv = Path(root), _check_csv(out_csv, overwrite)
    if not 0 <= valid_pct < 1: raise UserError(f"valid_pct={valid_pct}: give a share in [0, 1)")
    if not root.is_dir(): raise UserError(f"{root}: image folder not found")
    dirs = lambda d: sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith('.'))
    tops = dirs(root)
    is_split = [p.name.lower() in _SPLIT_DIRS for p in tops]
    if any(is_split) and not all(is_split):
        raise UserError(f"{root}: mixes split folders ({', '.join(p.name for p, s in zip(tops, is_split) if s)}) with other folders "
                        f"({', '.join(p.name for p, s in zip(tops, is_split) if not s)}); use root/<class>/<image> or root/<split>/<class>/<image>")
    rel = Path(os.path.relpath(root.resolve(), out_csv.parent.resolve())).as_posix()
    splits = [(p, _SPLIT_DIRS[p.name.lower()]) for p in tops] if tops and all(is_split) else [(root, 'train')]
    rows = [(f'{rel}/{p.relative_to(root).as_posix()}', c.name, split) for d, split in splits for c in dirs(d) for p in _image_files(c)]
    if not rows: raise UserError(f"{root}: no images ({', '.join(IMAGE_EXTS)}) in {'<split>/' if splits[0][0] != root else ''}<class>/ folders")
    df = _frame(rows, sorted({r[1] for r in rows}))
    if valid_pct:
        if (df.split == 'valid').any(): raise UserError(f"{root}: has a valid/val folder already; drop valid_pct")
        rng = np.random.default_rng(seed)
        for c in df.attrs['classes']:
            idx = np.flatnonzero((df.label == c) & (df.split == 'train'))
            df.loc[rng.choice(idx, max(min(round(len(idx)*valid_pct), len(idx)-1), 0), replace=False), 'split'] = 'valid'
    write_atomic(out_csv, df.to_csv(index=False))
    return df

def conversion_summary(df:pd.DataFrame) -> str:
    "One line: rows per split, number of classes, and the rows skipped with their reasons."
    n = df.split.value_counts()
    s = ' + '.join(f"{n[k]} {k}" for k in ('train', 'valid', 'test') if k in n) + f" rows, {len(df.attrs.get('classes', []))} classes"
    if skipped := df.attrs.get('skipped'): s += f"; skipped {sum(skipped.values())} ({', '.join(f'{v} {k}' for k, v in skipped.items())})"
    return s
