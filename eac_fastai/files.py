"Files written safely: output folders checked before any work, and atomic writes (a kill never leaves half a file)."
import io, os, tempfile
from contextlib import contextmanager
from pathlib import Path
import torch
from .errors import UserError

__all__ = ['check_output_dir', 'check_new_file', 'atomic_path', 'write_error', 'write_atomic', 'save_atomic']

def check_output_dir(path, what:str='output folder') -> Path:
    "`path` if it is, or can be created as, a writable folder; else a `UserError` saying why (checked before any work)."
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir(): raise UserError(f"{what} {path}: {existing} is a file, not a folder; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK): raise UserError(f"{what} {path}: {existing} is not writable")
    return path

def check_new_file(path, overwrite:bool=False) -> Path:
    "`path` as a `Path` if a file may be written there: not a folder, new (or `overwrite`), its folder writable."
    path = Path(path)
    if path.is_dir(): raise UserError(f"{path}: is a folder; give a file name")
    if path.exists() and not overwrite:
        raise UserError(f"{path}: already exists; choose another output or pass --overwrite")
    check_output_dir(path.parent)
    return path

@contextmanager
def atomic_path(path):
    "A temporary path beside `path`, renamed to `path` when the block succeeds: readers never see half a file."
    path, tmp = Path(path), None
    if path.is_dir(): raise UserError(f"{path}: is a folder; give a file name")
    try:
        check_output_dir(path.parent).mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.')
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())              # as a plain open() would create it (mkstemp makes it private)
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as e: raise write_error(path, e) from None
    finally:
        if tmp is not None and os.path.exists(tmp): os.remove(tmp)

def write_error(path, e:OSError) -> UserError:
    "The `UserError` for an `OSError` met writing `path` (a full disk, a read-only folder, a file-size limit)."
    return UserError(f"{path}: cannot write it ({e.strerror or e}); free some space, or choose a writable output")

def _write_synced(path, write, mode:str):
    "Open `path` in `mode`, `write(file)`, and flush it to disk."
    with open(path, mode) as f: write(f); f.flush(); os.fsync(f.fileno())

def write_atomic(path, text:str):
    "Write `text` to `path` through a temporary file and a rename, so readers never see half a file."
    with atomic_path(path) as tmp: _write_synced(tmp, lambda f: f.write(text), 'w')

def save_atomic(obj, path):
    "`torch.save(obj)` to `path` through a temporary file and a rename: a kill never leaves half a checkpoint."
    buf = io.BytesIO()
    torch.save(obj, buf)                              # in memory: a failed write below is the OSError it is
    with atomic_path(path) as tmp: _write_synced(tmp, lambda f: f.write(buf.getbuffer()), 'wb')

def _umask() -> int:
    mask = os.umask(0); os.umask(mask)
    return mask
