"Run directories: resolved recipe, environment, per-epoch history, checkpoints, predictions and `metrics.json`."
import os, platform, subprocess, sys, tempfile
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
import numpy as np, pandas as pd, torch
from .errors import UserError

__all__ = ['check_output_dir', 'new_run_dir', 'atomic_path', 'write_atomic', 'save_atomic', 'environment', 'summarize_history', 'save_predictions']

def check_output_dir(path, what:str='output folder') -> Path:
    "`path` if it is, or can be created as, a writable folder; else a `UserError` saying why (checked before any work)."
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir(): raise UserError(f"{what} {path}: {existing} is a file, not a folder; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK): raise UserError(f"{what} {path}: {existing} is not writable")
    return path

def new_run_dir(parent, stem:str) -> Path:
    "A new, empty directory `parent/<stem>-<YYYYmmdd-HHMMSS>[-N]`; an existing one is never reused."
    parent = check_output_dir(parent, 'runs folder'); parent.mkdir(parents=True, exist_ok=True)
    base = f"{stem}-{datetime.now():%Y%m%d-%H%M%S}"
    for i in range(1, 1000):
        d = parent/(base if i == 1 else f'{base}-{i}')
        try: d.mkdir(); return d
        except FileExistsError: continue
    raise RuntimeError(f"could not create a new run directory under {parent}")

@contextmanager
def atomic_path(path):
    "A temporary path beside `path`, renamed to `path` when the block succeeds: readers never see half a file."
    path = Path(path)
    if path.is_dir(): raise UserError(f"{path}: is a folder; give a file name")
    check_output_dir(path.parent).mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.')
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())              # as a plain open() would create it (mkstemp makes it private)
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp): os.remove(tmp)

def _write_synced(path, write, mode:str):
    "Open `path` in `mode`, `write(file)`, and flush it to disk."
    with open(path, mode) as f: write(f); f.flush(); os.fsync(f.fileno())

def write_atomic(path, text:str):
    "Write `text` to `path` through a temporary file and a rename, so readers never see half a file."
    with atomic_path(path) as tmp: _write_synced(tmp, lambda f: f.write(text), 'w')

def save_atomic(obj, path):
    "`torch.save(obj)` to `path` through a temporary file and a rename: a kill never leaves half a checkpoint."
    with atomic_path(path) as tmp: _write_synced(tmp, lambda f: torch.save(obj, f), 'wb')

def _umask() -> int:
    mask = os.umask(0); os.umask(mask)
    return mask

def _git_sha() -> str|None:
    try: return subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True, timeout=5,
                               cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError): return None

def environment(device=None) -> dict:
    "Versions, machine and device facts worth keeping beside a result."
    import fastai, torchvision, eac_fastai
    return dict(eac_fastai=eac_fastai.__version__, python=sys.version.split()[0], torch=torch.__version__,
                torchvision=torchvision.__version__, fastai=fastai.__version__, numpy=np.__version__, pandas=pd.__version__,
                platform=platform.platform(), cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(),
                device=str(device), cuda=torch.version.cuda,
                gpu=torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                git_sha=_git_sha(), command=sys.argv, started=datetime.now().isoformat(timespec='seconds'))

def summarize_history(history:pd.DataFrame, metric:str='accuracy') -> dict:
    """Final, best (selected on the evaluation split) and mean-of-last-5-epochs `metric`, the paper's protocol; with
    the memorisation columns, the final and highest share of flipped training labels predicted as given."""
    acc = history[metric].astype(float)
    best = int(acc.idxmax())
    out = {f'final_{metric}': float(acc.iloc[-1]), f'best_{metric}': float(acc.max()),
           'best_epoch': int(history.epoch.iloc[best]), f'last5_mean_{metric}': float(acc.iloc[-5:].mean()),
           'final_valid_loss': float(history.valid_loss.iloc[-1]), 'epochs': len(history)}
    if 'flipped_as_given' in history and history.flipped_as_given.notna().all():   # memorisation, where it was logged
        out.update(final_flipped_as_given=float(history.flipped_as_given.iloc[-1]),
                   max_flipped_as_given=float(history.flipped_as_given.max()),
                   final_flipped_as_clean=float(history.flipped_as_clean.iloc[-1]))
    return out

def save_predictions(learn, path, dl=None) -> pd.DataFrame:
    """Write the validation items with their predicted class and class probabilities to `path` (CSV); the model's own
    forward pass in this process (no gathering across processes, so rank 0 can write them alone)."""
    from .analysis import outputs
    dl = dl or learn.dls.valid
    probs = outputs(learn.model, dl)[0]
    vocab = list(learn.dls.vocab)
    items = dl.items.drop(columns=['is_valid', 'path'], errors='ignore').reset_index(drop=True)
    out = items.assign(pred=np.array(vocab)[probs.argmax(1).numpy()])
    out = pd.concat([out, pd.DataFrame(probs.numpy(), columns=[f'prob_{c}' for c in vocab])], axis=1)
    write_atomic(path, out.to_csv(index=False))
    return out
