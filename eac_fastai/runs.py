"Run directories: resolved recipe, environment, per-epoch history, checkpoints, predictions and `metrics.json`."
import os, platform, subprocess, sys, tempfile
from datetime import datetime
from pathlib import Path
import numpy as np, pandas as pd, torch
from fastai.callback.tracker import TrackerCallback
from fastcore.basics import store_attr
from .errors import UserError

__all__ = ['check_output_dir', 'new_run_dir', 'write_atomic', 'environment', 'summarize_history', 'CheckpointCallback', 'save_predictions']

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

def write_atomic(path, text:str):
    "Write `text` to `path` through a temporary file and a rename, so readers never see half a file."
    path = Path(path)
    if path.is_dir(): raise UserError(f"{path}: is a folder; give a file name")
    check_output_dir(path.parent).mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.')
    try:
        os.chmod(tmp, 0o666 & ~_umask())              # as a plain open() would create it (mkstemp makes it private)
        with os.fdopen(fd, 'w') as f: f.write(text); f.flush(); os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp): os.remove(tmp)

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
    "Final, best (selected on the evaluation split) and mean-of-last-5-epochs `metric`, the paper's protocol."
    acc = history[metric].astype(float)
    best = int(acc.idxmax())
    return {f'final_{metric}': float(acc.iloc[-1]), f'best_{metric}': float(acc.max()),
            'best_epoch': int(history.epoch.iloc[best]), f'last5_mean_{metric}': float(acc.iloc[-5:].mean()),
            'final_valid_loss': float(history.valid_loss.iloc[-1]), 'epochs': len(history)}

class CheckpointCallback(TrackerCallback):
    "Save `models/best.pth` when `monitor` improves and `models/last.pth` (with optimizer) every epoch; the learner keeps the last weights."
    order = TrackerCallback.order + 1
    def __init__(self, monitor:str='accuracy', with_opt:bool=True):
        super().__init__(monitor=monitor)
        store_attr('with_opt')
    def after_epoch(self):
        super().after_epoch()
        if self.new_best: self.learn.save('best', with_opt=False)
        self.learn.save('last', with_opt=self.with_opt)

def save_predictions(learn, path, dl=None) -> pd.DataFrame:
    "Write the validation items with their predicted class and class probabilities to `path` (CSV)."
    dl = dl or learn.dls.valid
    probs, _ = learn.get_preds(dl=dl)
    vocab = list(learn.dls.vocab)
    items = dl.items.drop(columns=['is_valid', 'path'], errors='ignore').reset_index(drop=True)
    out = items.assign(pred=np.array(vocab)[probs.argmax(1).numpy()])
    out = pd.concat([out, pd.DataFrame(probs.numpy(), columns=[f'prob_{c}' for c in vocab])], axis=1)
    write_atomic(path, out.to_csv(index=False))
    return out
