"Train a recipe into a new run folder (optionally after lr_find), resume an interrupted one, or run only lr_find."
import json
from pathlib import Path
import pandas as pd
from fastai.torch_core import num_distrib, rank_distrib, set_seed
from rich.console import Console
from ..analysis.memorisation import MemorisationCallback
from ..data.core import train_noise_rate
from ..errors import TrainingDiverged, UserError
from ..files import check_output_dir, write_atomic
from ..methods import METHODS
from ..metrics import per_class_accuracy
from ..models.learner import export_learner
from ..models.weights import load_torch_file
from ..settings import Settings, load_settings
from .build import (check_distributable, compile_model, last_batch_problem, recipe_dataloaders, recipe_learner,
                    runtime_problem)
from .checkpoint import RESUME, RESUME_KEYS, CheckpointCallback, HistoryLogger, restore_training_state, starting_at
from .divergence import DivergenceCallback
from .distributed import distributed, is_distributed, is_main_process, use_local_gpu
from .accumulation import EpochGradientAccumulation
from .loggers import logger_callbacks
from .early_stop import EarlyStopping
from .evaluation import EvalSubsetCallback
from .lr_find import run_lr_find
from .progress import RichProgressCallback
from .recipe import recipe_yaml
from .runs import RunLock, environment, new_run_dir, read_run_recipe, save_predictions, summarize_history
from .schedules import fit_with_schedule
from .schema import Recipe

__all__ = ['train_recipe', 'resume_run', 'lr_find_recipe']

def _prepare(recipe, out, stem, settings):
    """Seed, data and learner (any input error surfaces here, before anything is written), then a new run directory
    (in several processes: only rank 0 makes and writes it; the others get None)."""
    settings = settings or load_settings()
    check_output_dir(out or settings.runs, 'runs folder')
    if is_distributed(): check_distributable(recipe); use_local_gpu()
    if problem := runtime_problem(recipe): raise UserError(problem)
    if recipe.seed is not None: set_seed(recipe.seed, reproducible=True)
    dls = recipe_dataloaders(recipe, settings)
    if len(dls.train) == 0:
        raise UserError(f"no training batch: {len(dls.train_ds)} training images, data.bs={recipe.data.bs} "
                        "and data.drop_last=true; lower data.bs or set data.drop_last=false")
    learn = recipe_learner(recipe, dls, settings)
    for cb in learn.cbs.filter(lambda c: hasattr(c, 'check_data')): cb.check_data(dls)   # e.g. RUL's last batch of one
    if problem := last_batch_problem(learn, recipe.data.img_size): raise UserError(problem)
    compile_model(learn, recipe.train.compile)
    if not is_main_process(): return None, learn
    learn.path = run = new_run_dir(out or settings.runs, stem)
    write_atomic(run/'recipe.yaml', recipe_yaml(recipe))
    write_atomic(run/'env.json', json.dumps(environment(dls.device), indent=2))
    return run, learn

def train_recipe(recipe:Recipe, out=None, stem:str='run', settings:Settings|None=None,
                 console:Console|None=None) -> Path:
    "Train `recipe` into a new run directory under `out` (default: settings.ini's runs dir) and return it."
    console = console or Console()
    run, learn = _prepare(recipe, out, stem, settings)
    if run is not None:
        n, bs = recipe.train.accumulate, recipe.data.bs
        console.print(f"[bold]{recipe.method}[/] · {recipe.model.arch} · {len(learn.dls.train_ds)} train / "
                      f"{len(learn.dls.valid_ds)} {recipe.data.valid_split} images · {learn.dls.device}"
                      f"{f' × {num_distrib()} processes' if is_distributed() else ''}"
                      f"{f' · batch {bs} × {n} accumulated = {bs*n}' if n > 1 else ''} → {run}", soft_wrap=True)
    t = recipe.train
    with RunLock(run):
        # each process finds the same rate
        with learn.no_bar(): lr = run_lr_find(learn, recipe, run) if t.lr == 'find' else t.lr
        if t.lr == 'find' and run is not None:
            console.print(f"lr_find: {t.lr_find.suggestion} suggestion {lr:.2e} (lr_find.png)")
        return _fit_and_finish(recipe, run, learn, lr, console)

def _fit_and_finish(recipe:Recipe, run:Path|None, learn, lr:float, console:Console, best:float|None=None,
                    resumed:bool=False, started:Recipe|None=None, history:pd.DataFrame|None=None) -> Path|None:
    """The scheduled fit (checkpoints and history written every epoch), then predictions, metrics.json and export.pkl
    (`run` None: a process other than rank 0 of several, which trains and writes nothing). `started`: the recipe as
    the run started, kept in its resume checkpoint (default `recipe`); `history`: its rows so far."""
    t, stop = recipe.train, None
    cbs = [MemorisationCallback()] if t.memorisation else []
    if t.eval_subset is not None: cbs.append(EvalSubsetCallback(**t.eval_subset.model_dump()))
    if t.accumulate > 1:
        cbs.append(EpochGradientAccumulation(t.accumulate, recipe.data.bs, METHODS[recipe.method].labels_per_image))
    if t.early_stop is not None: cbs.append(stop := EarlyStopping(**t.early_stop.model_dump(), history=history))
    cbs.append(guard := DivergenceCallback())
    # resuming a run of several processes: not yet (each has its own generators)
    if run is not None:
        cbs += [HistoryLogger('history.csv', append=resumed), RichProgressCallback(console),
                CheckpointCallback(stop.monitor if stop else 'accuracy', resumable=t.resumable and not is_distributed(),
                                   lr=lr, best=best,
                                   recipe=(started or recipe).model_dump(mode='json'))]
        cbs += logger_callbacks(t.loggers, run, started or recipe)
    if is_distributed() and recipe.seed is not None:
        set_seed(recipe.seed + rank_distrib(), reproducible=True)   # each its own augmentation
    if not (stop and stop.stopped):                   # stopped early, then cut before it finished: nothing to train
        with learn.no_bar(), learn.no_logging(), distributed(learn):
            fit_with_schedule(learn, t.schedule, t.epochs, lr, t.gamma, t.pct_start, cbs=cbs)
    if guard.diverged: _diverged(run, guard.diverged, t.epochs)
    if run is None: return None
    with learn.no_bar(), learn.no_logging():
        preds = save_predictions(learn, run/f'preds_{recipe.data.valid_split}.csv')
    method = getattr(learn, recipe.method, None)      # the method's callback (none for the baseline)
    if getattr(method, 'relabels', False):
        write_atomic(run/f'{recipe.method}_labels.csv', method.relabel_frame().to_csv(index=False))
    history = pd.read_csv(run/'history.csv')
    metrics = dict(summarize_history(history), method=recipe.method, tags=recipe.tags, lr=lr,
                   valid_split=recipe.data.valid_split,
                   classes=list(learn.dls.vocab),
                   per_class_accuracy=per_class_accuracy(preds.label, preds.pred, learn.dls.vocab),  # final model
                   n_train=len(learn.dls.train_ds), n_valid=len(learn.dls.valid_ds),
                   **({'early_stop': dict(**t.early_stop.model_dump(), stopped=stop.stopped,
                                          best=float(stop.best), best_epoch=stop.best_epoch)} if stop else {}),
                   train_noise_rate=train_noise_rate(learn.dls))
    write_atomic(run/'metrics.json', json.dumps(metrics, indent=2))
    export_learner(learn, run/'export.pkl')
    console.print(f"accuracy: last-5 mean {metrics['last5_mean_accuracy']:.4f} · "
                  f"final {metrics['final_accuracy']:.4f} · "
                  f"best {metrics['best_accuracy']:.4f} (epoch {metrics['best_epoch']})"
                  + (f" · mean class last-5 {m:.4f}" if (m := metrics.get('last5_mean_mean_class_accuracy')) else '')
                  + f" → {run/'metrics.json'}",
                  soft_wrap=True)
    return run

DIVERGED = 'diverged.json'

def _diverged(run:Path|None, where:dict, epochs:int):
    "Record in `run` where training diverged and raise `TrainingDiverged` saying where and what to check."
    e = where['epoch']
    if run is not None: write_atomic(run/DIVERGED, json.dumps(where, indent=2))
    kept = (f"models/ keeps epoch {e-1}'s checkpoints and history.csv its rows" if e else "no epoch had finished")
    raise TrainingDiverged(
        f"{run or 'training'}: diverged: the {where['split']} loss became {where['value']} in epoch {e} of {epochs} "
        f"(batch {where['batch']+1} of {where['n_batches']}); {kept}. Check train.lr (lower it, or lr: find), the "
        "method's weights (eac.lam, ...), data.mean/std and the images, then start a new run", run)

def _changed_keys(old:dict, new:dict, prefix:str='') -> list[str]:
    "The dotted keys whose values differ between two nested dicts, as `key: old → new`."
    out = []
    for k in dict.fromkeys([*old, *new]):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict): out += _changed_keys(a, b, f'{prefix}{k}.')
        elif a != b: out.append(f"{prefix}{k}: {a!r} → {b!r}")
    return out

def _as_now(started:dict) -> dict:
    "The recipe a run started with, as this version resolves it (keys added since then at their defaults)."
    try: return Recipe.model_validate(started).model_dump(mode='json')
    except ValueError: return started                   # no longer valid: compared as it was

def _read_history(path:Path, last_epoch:int) -> pd.DataFrame|None:
    "The rows of history.csv up to epoch `last_epoch` (None: no file); a `UserError` when it is not one."
    if not path.is_file(): return None
    try: h = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as e:
        raise UserError(f"{path}: cannot read the run's history ({str(e).splitlines()[0]}); restore it from a backup "
                        "or start a new run") from None
    if 'epoch' not in h or not pd.api.types.is_integer_dtype(h.epoch) or set(range(last_epoch+1)) - set(h.epoch):
        raise UserError(f"{path}: not the history of this run (it needs an integer epoch column with epochs 0 to "
                        f"{last_epoch}); restore it or start a new run")
    return h[h.epoch <= last_epoch]

def resume_run(run, settings:Settings|None=None, console:Console|None=None) -> Path:
    """Continue the interrupted run in folder `run` after its last finished epoch (`models/resume.pth`), in the same
    folder, as if it had never stopped: with a fixed seed on the same machine, the same history and metrics."""
    run, console = Path(run), console or Console()
    if is_distributed():
        raise UserError("--resume continues a run in one process; start it without torchrun/accelerate")
    recipe = read_run_recipe(run)
    with RunLock(run, claim=False) as lock:                 # a live run: refused before anything is read
        state = _resumable_state(run, recipe)
        if problem := runtime_problem(recipe): raise UserError(problem)
        if recipe.seed is not None: set_seed(recipe.seed, reproducible=True)
        started = recipe                                  # the checkpoint has the weights:
        recipe = recipe.model_copy(update=dict(model=recipe.model.model_copy(update=dict(weights=None))))
        learn = recipe_learner(recipe, recipe_dataloaders(recipe, settings), settings, path=run)
        compile_model(learn, recipe.train.compile)
        restore_training_state(learn, state, run/'models'/RESUME)
        history = _read_history(run/'history.csv', state['epoch'])
        lock.claim()
        # rows of the epoch the kill interrupted after its row was written
        if history is not None: write_atomic(run/'history.csv', history.to_csv(index=False))
        console.print(f"[bold]resuming[/] {run} after epoch {state['epoch']} of {recipe.train.epochs}",
                      soft_wrap=True)
        with starting_at(learn, state):
            return _fit_and_finish(recipe, run, learn, state['lr'], console, best=state['best'], resumed=True,
                                   started=started, history=history)

def _resumable_state(run:Path, recipe:Recipe) -> dict:
    "The `models/resume.pth` of `run`, checked: the run is unfinished, did not diverge, and its recipe is unedited."
    if (run/'metrics.json').is_file():
        raise UserError(f"{run}: finished already (metrics.json exists); nothing to resume")
    if (run/DIVERGED).is_file():
        raise UserError(f"{run}: diverged ({DIVERGED}); resuming would repeat it: fix the recipe and start a new run")
    if not (run/'models'/RESUME).is_file():
        raise UserError(f"{run}: no models/{RESUME}: the run stopped before its first epoch ended "
                        "(or trained with train.resumable=false); "
                        f"start it again: eac-fastai train {run/'recipe.yaml'}")
    state = load_torch_file(run/'models'/RESUME)
    if not isinstance(state, dict) or (missing := set(RESUME_KEYS) - set(state)):
        raise UserError(f"{run/'models'/RESUME}: not a resume checkpoint of eac-fastai "
                        f"(no {', '.join(sorted(missing)) if isinstance(state, dict) else 'dict'})")
    if 'recipe' in state and (changed := _changed_keys(_as_now(state['recipe']), recipe.model_dump(mode='json'))):
        raise UserError(f"{run/'recipe.yaml'}: edited after the run started ({'; '.join(changed[:6])}"
                        f"{' …' if len(changed) > 6 else ''}); the weights were trained with the old values: "
                        "restore them, or start a new run with the new recipe")
    if state['n_epoch'] != recipe.train.epochs:          # a checkpoint written before recipes were kept in it
        raise UserError(f"{run/'models'/RESUME}: written for {state['n_epoch']} epochs "
                        f"but recipe.yaml says {recipe.train.epochs}; "
                        "the recipe was edited after the run started: restore it or start a new run")
    return state

def lr_find_recipe(recipe:Recipe, out=None, stem:str='lr-find', settings:Settings|None=None) -> tuple[Path, float]:
    "Run only the recipe's lr_find into a new run directory; returns it and the chosen learning rate."
    run, learn = _prepare(recipe, out, stem, settings)
    with learn.no_bar(): return run, run_lr_find(learn, recipe, run)
