"""What the converters share: the images folder's no-overwrite check, a staging folder renamed into place with the
CSV, the CSV frame and its summary, and the readers of input tables and image trees."""
import os, shutil, tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
import numpy as np, pandas as pd
from ...errors import UserError
from ...files import write_atomic

__all__ = ['IMAGE_EXTS', 'conversion_summary']

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')

def _images_dir(out_csv:Path, images, sources, overwrite:bool) -> Path:
    "The folder to fill: `images` relative to the CSV's folder (default: the CSV's stem), checked before any work."
    rel = Path(out_csv.stem if images is None else images)
    if rel.is_absolute() or not rel.parts or '..' in rel.parts:
        raise UserError(f"images folder {str(images)!r}: give a folder name relative to the CSV's folder, without '..'")
    dest = out_csv.parent/rel
    if dest.exists() and not dest.is_dir(): raise UserError(f"{dest}: is a file; choose another images folder")
    if dest.exists() and not overwrite:
        raise UserError(f"{dest}: images folder already exists; choose another one or pass --overwrite")
    d = dest.resolve()
    for s in sources:
        if d == Path(s).resolve() or d in Path(s).resolve().parents:
            raise UserError(f"{dest}: would replace the input {s}; choose another images folder")
    return dest

@contextmanager
def _staging(dest:Path):
    "A new temporary folder next to `dest` to fill; removed on exit unless `_publish` moved it into place."
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f'.{dest.name}.tmp-'))
    try: yield tmp
    finally: shutil.rmtree(tmp, ignore_errors=True)

def _publish(tmp:Path, dest:Path, out_csv:Path, df:pd.DataFrame):
    """Rename the filled `tmp` to `dest`, then write `out_csv`; an old `dest` is deleted only after both succeeded, else
    put back."""
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
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} in its header line; "
                        f"a {what} has {', '.join(cols)}")
    if df.empty: raise UserError(f"{path}: has a header but no rows")
    return df, first

def _ints(df:pd.DataFrame, col:str, path, first:int, lo:int|None=None, hi:int|None=None) -> np.ndarray:
    "Column `col` as integers in `lo..hi`; else a `UserError` naming the file and line of the first bad value."
    v = pd.to_numeric(df[col].str.strip(), errors='coerce').to_numpy(dtype=float)
    bad = (np.isnan(v) | (v != np.round(v)) | ((v < lo) if lo is not None else False)
           | ((v > hi) if hi is not None else False))
    if bad.any():
        i = _first(bad)
        want = 'an integer' + (f' in {lo}..{hi}' if hi is not None else ' >= 0' if lo == 0 else '')
        raise UserError(f"{path}:{i+first}: `{col}` is {df[col].iloc[i]!r}, expected {want}")
    return v.astype(np.int64)

def _image_files(folder:Path) -> list[Path]:
    "Image files (by `IMAGE_EXTS`, any case) at any depth under `folder`, skipping hidden ones, sorted."
    return sorted(p for p in folder.rglob('*') if p.suffix.lower() in IMAGE_EXTS and p.is_file()
                  and not any(s.startswith('.') for s in p.relative_to(folder).parts))

def conversion_summary(df:pd.DataFrame) -> str:
    "One line: rows per split, number of classes, and the rows skipped with their reasons."
    n = df.split.value_counts()
    s = (' + '.join(f"{n[k]} {k}" for k in ('train', 'valid', 'test') if k in n)
         + f" rows, {len(df.attrs.get('classes', []))} classes")
    if skipped := df.attrs.get('skipped'):
        s += f"; skipped {sum(skipped.values())} ({', '.join(f'{v} {k}' for k, v in skipped.items())})"
    return s
