"""Run directories: making one, locking it while a process trains in it, what a run writes there (environment, history
summary, predictions), and reading a finished run back (its recipe, its class order, its learner)."""
import fcntl, json, os, platform, socket, subprocess, sys
from datetime import datetime
from pathlib import Path
import numpy as np, pandas as pd, torch
from fastai.torch_core import get_model
from ..errors import UserError
from ..files import check_output_dir, write_atomic
from ..models.weights import read_state_dict
from ..settings import Settings
from .build import recipe_dataloaders, recipe_learner
from .recipe import load_recipe
from .schema import Recipe

__all__ = ['new_run_dir', 'RunLock', 'environment', 'summarize_history', 'predictions', 'save_predictions',
           'CHECKPOINTS', 'read_run_recipe', 'read_run_classes', 'load_run']

def new_run_dir(parent, stem:str) -> Path:
    "A new, empty directory `parent/<stem>-<YYYYmmdd-HHMMSS>[-N]`; an existing one is never reused."
    parent = check_output_dir(parent, 'runs folder'); parent.mkdir(parents=True, exist_ok=True)
    base = f"{stem}-{datetime.now():%Y%m%d-%H%M%S}"
    for i in range(1, 1000):
        d = parent/(base if i == 1 else f'{base}-{i}')
        try: d.mkdir(); return d
        except FileExistsError: continue
    raise RuntimeError(f"could not create a new run directory under {parent}")

class RunLock:
    """Hold run folder `run` for this process while it trains there: `flock` on `run/.lock`, which names the holder. A
    second process gets a `UserError` naming the first; the system drops the lock when its process ends, even by
    kill -9, so a stale lock is simply taken over. `claim`: write this process into the file on entering (else call
    `claim()` once the checks pass). `run` None: a process that writes no run folder (nothing to lock)."""
    FILE = '.lock'
    def __init__(self, run, claim:bool=True): self.run, self.claim_now, self.file = run, claim, None

    def __enter__(self):
        if self.run is None: return self
        path = Path(self.run)/self.FILE
        try: self.file = open(path, 'a+')
        except OSError as e: raise UserError(f"{self.run}: cannot lock the run folder ({e.strerror}: {path})") from None
        try: fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.seek(0); holder = self.file.read().strip() or 'another process'
            self.file.close()
            raise UserError(f"{self.run}: in use by {holder}; wait for that run to end (or stop it) before "
                            "resuming it") from None
        if self.claim_now: self.claim()
        return self

    def claim(self):
        "Name this process in the lock file."
        if self.file is None: return
        self.file.seek(0); self.file.truncate()
        self.file.write(f"process {os.getpid()} on {socket.gethostname()} (since {datetime.now():%Y-%m-%d %H:%M:%S})\n")
        self.file.flush()

    def __exit__(self, *exc):
        if self.file is not None: self.file.close()            # closing drops the lock

def _git_sha() -> str|None:
    try: return subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True, timeout=5,
                               cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError): return None

def environment(device=None) -> dict:
    "Versions, machine and device facts worth keeping beside a result."
    import fastai, torchvision, eac_fastai
    return dict(eac_fastai=eac_fastai.__version__, python=sys.version.split()[0], torch=torch.__version__,
                torchvision=torchvision.__version__, fastai=fastai.__version__, numpy=np.__version__,
                pandas=pd.__version__,
                platform=platform.platform(), cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(),
                device=str(device), cuda=torch.version.cuda,
                gpu=torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                git_sha=_git_sha(), command=sys.argv, started=datetime.now().isoformat(timespec='seconds'))

def summarize_history(history:pd.DataFrame, metric:str='accuracy') -> dict:
    """Final, best (selected on the evaluation split) and mean-of-last-5-epochs `metric`, the paper's protocol (for
    accuracy, the same of the mean class accuracy where it was logged); with the memorisation columns, the final and
    highest share of flipped training labels predicted as given."""
    acc = history[metric].astype(float)
    best = int(acc.idxmax())
    out = {f'final_{metric}': float(acc.iloc[-1]), f'best_{metric}': float(acc.max()),
           'best_epoch': int(history.epoch.iloc[best]), f'last5_mean_{metric}': float(acc.iloc[-5:].mean()),
           'final_valid_loss': float(history.valid_loss.iloc[-1]), 'epochs': len(history)}
    if metric == 'accuracy' and 'mean_class_accuracy' in history and history.mean_class_accuracy.notna().all():
        out.update({k: v for k, v in summarize_history(history, 'mean_class_accuracy').items()
                    if 'mean_class_accuracy' in k})
    if 'flipped_as_given' in history and history.flipped_as_given.notna().all():   # memorisation, where it was logged
        out.update(final_flipped_as_given=float(history.flipped_as_given.iloc[-1]),
                   max_flipped_as_given=float(history.flipped_as_given.max()),
                   final_flipped_as_clean=float(history.flipped_as_clean.iloc[-1]))
    return out

def predictions(learn, dl=None, tta:str|None=None) -> pd.DataFrame:
    """The items of `dl` (default: the validation loader) with their predicted class and class probabilities (`tta`:
    see `outputs`); the model's own forward pass in this process (no gathering across processes)."""
    from ..analysis.outputs import outputs
    dl = dl or learn.dls.valid
    probs = outputs(learn.model, dl, tta)[0]
    vocab = list(learn.dls.vocab)
    items = dl.items.drop(columns=['is_valid', 'path'], errors='ignore').reset_index(drop=True)
    out = items.assign(pred=np.array(vocab)[probs.argmax(1).numpy()])
    return pd.concat([out, pd.DataFrame(probs.numpy(), columns=[f'prob_{c}' for c in vocab])], axis=1)

def save_predictions(learn, path, dl=None) -> pd.DataFrame:
    "Write `predictions(learn, dl)` to `path` (CSV), so rank 0 of several processes can write them alone."
    out = predictions(learn, dl)
    write_atomic(path, out.to_csv(index=False))
    return out

CHECKPOINTS = ('last', 'best')

def read_run_recipe(run) -> Recipe:
    "The resolved recipe of run directory `run`; a `UserError` when `run` is not one."
    run = Path(run)
    if not (run/'recipe.yaml').is_file():
        raise UserError(f"{run}: not a run directory (no recipe.yaml); give a folder written by eac-fastai train")
    return load_recipe(run/'recipe.yaml')

def read_run_classes(run) -> list[str]:
    """The class order of run `run`'s model: `classes` in its metrics.json, else the `prob_<class>` columns of its
    predictions."""
    run = Path(run)
    if (m := run/'metrics.json').is_file():
        try: classes = json.loads(m.read_text()).get('classes')
        except (ValueError, AttributeError, OSError) as e:
            raise UserError(f"{m}: not readable as the run's metrics ({str(e).splitlines()[0]}); restore it") from None
        if classes: return classes
    for p in sorted(run.glob('preds_*.csv')):
        if cols := [c.removeprefix('prob_') for c in pd.read_csv(p, nrows=0).columns if c.startswith('prob_')]:
            return cols
    raise UserError(f"{run}: no metrics.json or preds_*.csv to read the class order from; the run did not finish")

def load_run(run, checkpoint:str='last', dls=None, settings:Settings|None=None) -> tuple[Recipe, object]:
    """The recipe and learner of a finished run: the model of `models/<checkpoint>.pth` on `dls` (default: the
    recipe's data, which must still be where the recipe says), in fp32 on the CPU or the GPU, without loading
    pretrained weights again."""
    run = Path(run)
    recipe = read_run_recipe(run)
    if checkpoint not in CHECKPOINTS: raise UserError(f"checkpoint {checkpoint!r}: choose {' or '.join(CHECKPOINTS)}")
    if not (run/'models'/f'{checkpoint}.pth').is_file():
        raise UserError(f"{run}: no models/{checkpoint}.pth; the run did not finish an epoch")
    recipe = recipe.model_copy(update=dict(model=recipe.model.model_copy(update=dict(weights=None)),
                                           train=recipe.train.model_copy(update=dict(precision='fp32', device='auto'))))
    dls = dls or recipe_dataloaders(recipe, settings)
    learn = recipe_learner(recipe, dls, settings, path=run)
    path = run/'models'/f'{checkpoint}.pth'
    state = read_state_dict(path)                     # tensors only (a UserError for anything else), unwrapped
    try: get_model(learn.model).load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise UserError(f"{path}: does not fit the recipe's model ({str(e).splitlines()[0][:300]})") from None
    return recipe, learn
