"Run a recipe: data, learner, optional lr_find, the scheduled fit, and everything written to the run directory."
import json
from dataclasses import dataclass
from pathlib import Path
import pandas as pd, torch
from matplotlib.figure import Figure
from fastai.callback.schedule import SuggestionMethod
from fastai.metrics import AccumMetric, accuracy
from fastai.torch_core import num_distrib, rank_distrib, set_seed
from rich.console import Console
from .augment import BasicAug, Crop, Erasing, Flip
from .checkpoint import RESUME, CheckpointCallback, HistoryLogger, restore_training_state, starting_at
from .data import label_dataloaders, train_noise_rate
from .distributed import distributed, is_distributed, is_main_process, use_local_gpu
from .demo import DemoSpec, demo_dataset
from .errors import UserError
from .evaluation import EvalSubsetCallback
from .learner import eac_learner, export_learner, method_callback
from .memorisation import MemorisationCallback
from .progress import RichProgressCallback
from .recipe import Recipe, recipe_yaml
from .runs import check_output_dir, environment, new_run_dir, save_predictions, summarize_history, write_atomic
from .schedules import fit_with_schedule
from .settings import Settings, load_settings
from .weights import load_torch_file

__all__ = ['DataSource', 'resolve_data', 'recipe_dataloaders', 'recipe_method', 'recipe_learner', 'run_lr_find', 'check_distributable', 'train_recipe', 'resume_run', 'lr_find_recipe',
           'CHECKPOINTS', 'run_recipe', 'run_classes', 'load_run']

@dataclass
class DataSource:
    "Where a recipe's label CSV and images are."
    csv: Path
    root: Path

def resolve_data(recipe:Recipe, settings:Settings, create:bool=True) -> DataSource:
    "The recipe's CSV and image root, paths resolved through `settings`; the demo data is generated when `create`."
    d = recipe.data
    if d.demo is not None:
        csv = demo_dataset(settings.data, DemoSpec(**d.demo.model_dump()), create)
    else: csv = settings.data_path(d.csv)
    return DataSource(csv, settings.data_path(d.root) if d.root else csv.parent)

def _device(name:str) -> torch.device:
    if name == 'auto': return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name == 'cuda' and not torch.cuda.is_available(): raise UserError("train.device=cuda but no CUDA device is available; use auto or cpu")
    return torch.device(name)

def recipe_dataloaders(recipe:Recipe, settings:Settings|None=None, device=None):
    "fastai DataLoaders for the recipe's data section."
    d, src = recipe.data, resolve_data(recipe, settings or load_settings())
    return label_dataloaders(src.csv, src.root, d.classes, d.valid_split, d.img_size, d.bs, d.num_workers, d.drop_last,
                             stats=(list(d.mean), list(d.std)), device=device or _device(recipe.train.device),
                             balanced=d.sampler == 'balanced', cache=d.cache)

def recipe_method(recipe:Recipe):
    "The training callback of the recipe's method, with its section's settings and the augmentation."
    a = recipe.augment
    aug = dict(erase=Erasing(a.erase.p, a.erase.scale, a.erase.ratio, a.erase.value) if a.erase else None,
               basic=BasicAug(a.basic.p, tuple(a.basic.ops), a.basic.var) if a.basic else None,
               crop=Crop(a.crop.padding) if a.crop else None, **({'flip': Flip(a.flip.p)} if a.flip else {}))
    section = getattr(recipe, recipe.method, None)
    return method_callback(recipe.method, **(section.model_dump() if section is not None else {}), **aug)

def recipe_learner(recipe:Recipe, dls, settings:Settings|None=None, path='.'):
    "The recipe's `eac_learner` on `dls`, pretrained weights resolved through `settings`, precision applied."
    settings = settings or load_settings()
    m, t = recipe.model, recipe.train
    learn = eac_learner(dls, m.arch, recipe_method(recipe), settings.weights_path(m.weights) if m.weights else None,
                        opt=t.opt, wd=t.wd, wd_bn_bias=t.wd_bn_bias, path=path,
                        metrics=AccumMetric(accuracy, flatten=False) if is_distributed() else accuracy)   # over the gathered predictions
    if t.channels_last: learn.to_channelslast(use_amp=False)
    if t.precision != 'fp32':
        if dls.device.type != 'cuda': raise UserError(f"train.precision={t.precision} needs a CUDA device; use fp32 on {dls.device.type}")
        learn.to_fp16() if t.precision == 'fp16' else learn.to_bf16()
    return learn

def _suggestions(lrs, losses, num_it:int) -> dict:
    "fastai's four lr_find suggestions on the recorded curve (trimmed as `lr_find` does); None where the curve is too short."
    lrs, losses = torch.tensor(lrs[num_it//10:-5]), torch.tensor(losses[num_it//10:-5])
    if (nan := torch.isnan(losses)).any(): lrs, losses = lrs[:nan.nonzero()[0, 0]], losses[:nan.nonzero()[0, 0]]
    out = dict.fromkeys(('valley', 'slide', 'minimum', 'steep'))
    if len(lrs) < 10: return out                        # too short a curve for any suggestion to mean something
    for f in (SuggestionMethod.Valley, SuggestionMethod.Slide, SuggestionMethod.Minimum, SuggestionMethod.Steep):
        try: out[f.__name__] = float(f(lrs, losses, num_it)[0])
        except (IndexError, ValueError, RuntimeError): out[f.__name__] = None
    return out

def run_lr_find(learn, recipe:Recipe, out:Path|None) -> float:
    "Run fastai's `lr_find`, save `lr_find.json` and `lr_find.png` in `out` (None: nowhere), return the recipe's chosen suggestion."
    cfg = recipe.train.lr_find
    learn.lr_find(cfg.start_lr, cfg.end_lr, cfg.num_it, show_plot=False, suggest_funcs=None)
    lrs, losses = [float(l) for l in learn.recorder.lrs], [float(l) for l in learn.recorder.losses]
    found = _suggestions(lrs, losses, cfg.num_it)
    if out is not None: _save_lr_find(out, found, cfg.suggestion, lrs, losses)
    if found[cfg.suggestion] is None:
        raise UserError(f"lr_find recorded {len(lrs)} steps, too few for the {cfg.suggestion} suggestion "
                        f"(see {out/'lr_find.png' if out else 'its curve'}); raise train.lr_find.num_it or set train.lr")
    return found[cfg.suggestion]

def _save_lr_find(out:Path, found:dict, chosen:str, lrs, losses):
    "`lr_find.json` (suggestions, curve) and `lr_find.png` in `out`."
    write_atomic(out/'lr_find.json', json.dumps(dict(suggestions=found, chosen=chosen, lr=found[chosen], lrs=lrs, losses=losses), indent=2))
    fig = Figure(figsize=(6, 4))                        # no pyplot: the caller's matplotlib backend is left alone
    ax = fig.subplots()
    ax.plot(lrs, losses); ax.set_xscale('log'); ax.set_xlabel('learning rate'); ax.set_ylabel('smoothed training loss')
    for (k, v), c in zip(found.items(), ('C1', 'C2', 'C3', 'C4')):
        if v is not None: ax.axvline(v, color=c, ls='--', label=f'{k} {v:.2e}')
    ax.legend(); fig.tight_layout(); fig.savefig(out/'lr_find.png', dpi=100)

def check_distributable(recipe:Recipe):
    "A `UserError` when `recipe` cannot train in several processes."
    if recipe.method == 'scn': raise UserError("method scn cannot train in several processes yet: its relabels live in each process; use one")

def _prepare(recipe, out, stem, settings):
    """Seed, data and learner (any input error surfaces here, before anything is written), then a new run directory
    (in several processes: only rank 0 makes and writes it; the others get None)."""
    settings = settings or load_settings()
    check_output_dir(out or settings.runs, 'runs folder')
    if is_distributed(): check_distributable(recipe); use_local_gpu()
    if recipe.seed is not None: set_seed(recipe.seed, reproducible=True)
    dls = recipe_dataloaders(recipe, settings)
    if len(dls.train) == 0: raise UserError(f"no training batch: {len(dls.train_ds)} training images, data.bs={recipe.data.bs} "
                                            "and data.drop_last=true; lower data.bs or set data.drop_last=false")
    learn = recipe_learner(recipe, dls, settings)
    for cb in learn.cbs.filter(lambda c: hasattr(c, 'check_data')): cb.check_data(dls)   # e.g. RUL's last batch of one
    if not is_main_process(): return None, learn
    learn.path = run = new_run_dir(out or settings.runs, stem)
    write_atomic(run/'recipe.yaml', recipe_yaml(recipe))
    write_atomic(run/'env.json', json.dumps(environment(dls.device), indent=2))
    return run, learn

def train_recipe(recipe:Recipe, out=None, stem:str='run', settings:Settings|None=None, console:Console|None=None) -> Path:
    "Train `recipe` into a new run directory under `out` (default: settings.ini's runs dir) and return it."
    console = console or Console()
    run, learn = _prepare(recipe, out, stem, settings)
    if run is not None: console.print(f"[bold]{recipe.method}[/] · {recipe.model.arch} · {len(learn.dls.train_ds)} train / "
                                      f"{len(learn.dls.valid_ds)} {recipe.data.valid_split} images · {learn.dls.device}"
                                      f"{f' × {num_distrib()} processes' if is_distributed() else ''} → {run}", soft_wrap=True)
    t = recipe.train
    with learn.no_bar(): lr = run_lr_find(learn, recipe, run) if t.lr == 'find' else t.lr   # each process finds the same rate
    if t.lr == 'find' and run is not None: console.print(f"lr_find: {t.lr_find.suggestion} suggestion {lr:.2e} (lr_find.png)")
    return _fit_and_finish(recipe, run, learn, lr, console)

def _fit_and_finish(recipe:Recipe, run:Path|None, learn, lr:float, console:Console, best:float|None=None, resumed:bool=False) -> Path|None:
    """The scheduled fit (checkpoints and history written every epoch), then predictions, metrics.json and export.pkl
    (`run` None: a process other than rank 0 of several, which trains and writes nothing)."""
    t = recipe.train
    cbs = [MemorisationCallback()] if t.memorisation else []
    if t.eval_subset is not None: cbs.append(EvalSubsetCallback(**t.eval_subset.model_dump()))
    if run is not None:                                # resuming a run of several processes: not yet (each has its own generators)
        cbs += [HistoryLogger('history.csv', append=resumed), RichProgressCallback(console),
                CheckpointCallback('accuracy', resumable=t.resumable and not is_distributed(), lr=lr, best=best)]
    if is_distributed() and recipe.seed is not None: set_seed(recipe.seed + rank_distrib(), reproducible=True)   # each its own augmentation
    with learn.no_bar(), learn.no_logging(), distributed(learn):
        fit_with_schedule(learn, t.schedule, t.epochs, lr, t.gamma, t.pct_start, cbs=cbs)
    if run is None: return None
    with learn.no_bar(), learn.no_logging(): save_predictions(learn, run/f'preds_{recipe.data.valid_split}.csv')
    if recipe.method == 'scn': write_atomic(run/'scn_labels.csv', learn.scn.label_frame().to_csv(index=False))
    history = pd.read_csv(run/'history.csv')
    metrics = dict(summarize_history(history), method=recipe.method, tags=recipe.tags, lr=lr, valid_split=recipe.data.valid_split,
                   classes=list(learn.dls.vocab),
                   n_train=len(learn.dls.train_ds), n_valid=len(learn.dls.valid_ds), train_noise_rate=train_noise_rate(learn.dls))
    write_atomic(run/'metrics.json', json.dumps(metrics, indent=2))
    export_learner(learn, run/'export.pkl')
    console.print(f"accuracy: last-5 mean {metrics['last5_mean_accuracy']:.4f} · final {metrics['final_accuracy']:.4f} · "
                  f"best {metrics['best_accuracy']:.4f} (epoch {metrics['best_epoch']}) → {run/'metrics.json'}", soft_wrap=True)
    return run

def resume_run(run, settings:Settings|None=None, console:Console|None=None) -> Path:
    """Continue the interrupted run in folder `run` after its last finished epoch (`models/resume.pth`), in the same
    folder, as if it had never stopped: with a fixed seed on the same machine, the same history and metrics."""
    run, console = Path(run), console or Console()
    if is_distributed(): raise UserError("--resume continues a run in one process; start it without torchrun/accelerate")
    recipe = run_recipe(run)
    if (run/'metrics.json').is_file(): raise UserError(f"{run}: finished already (metrics.json exists); nothing to resume")
    if not (run/'models'/RESUME).is_file():
        raise UserError(f"{run}: no models/{RESUME}: the run stopped before its first epoch ended (or trained with train.resumable=false); "
                        f"start it again: eac-fastai train {run/'recipe.yaml'}")
    state = load_torch_file(run/'models'/RESUME)
    if state.get('n_epoch') != recipe.train.epochs:
        raise UserError(f"{run/'models'/RESUME}: written for {state.get('n_epoch')} epochs but recipe.yaml says {recipe.train.epochs}; "
                        "the recipe was edited after the run started: restore it or start a new run")
    if recipe.seed is not None: set_seed(recipe.seed, reproducible=True)
    recipe = recipe.model_copy(update=dict(model=recipe.model.model_copy(update=dict(weights=None))))   # the checkpoint has the weights
    learn = recipe_learner(recipe, recipe_dataloaders(recipe, settings), settings, path=run)
    restore_training_state(learn, state, run/'models'/RESUME)
    history = run/'history.csv'
    if history.is_file():                              # rows of the epoch the kill interrupted after its row was written
        h = pd.read_csv(history)
        write_atomic(history, h[h.epoch <= state['epoch']].to_csv(index=False))
    console.print(f"[bold]resuming[/] {run} after epoch {state['epoch']} of {recipe.train.epochs}", soft_wrap=True)
    with starting_at(learn, state): return _fit_and_finish(recipe, run, learn, state['lr'], console, best=state['best'], resumed=True)

def lr_find_recipe(recipe:Recipe, out=None, stem:str='lr-find', settings:Settings|None=None) -> tuple[Path, float]:
    "Run only the recipe's lr_find into a new run directory; returns it and the chosen learning rate."
    run, learn = _prepare(recipe, out, stem, settings)
    with learn.no_bar(): return run, run_lr_find(learn, recipe, run)

CHECKPOINTS = ('last', 'best')

def run_recipe(run) -> Recipe:
    "The resolved recipe of run directory `run`; a `UserError` when `run` is not one."
    from .recipe import load_recipe
    run = Path(run)
    if not (run/'recipe.yaml').is_file():
        raise UserError(f"{run}: not a run directory (no recipe.yaml); give a folder written by eac-fastai train")
    return load_recipe(run/'recipe.yaml')

def run_classes(run) -> list[str]:
    "The class order of run `run`'s model: `classes` in its metrics.json, else the `prob_<class>` columns of its predictions."
    run = Path(run)
    if (m := run/'metrics.json').is_file() and (classes := json.loads(m.read_text()).get('classes')): return classes
    for p in sorted(run.glob('preds_*.csv')):
        if cols := [c.removeprefix('prob_') for c in pd.read_csv(p, nrows=0).columns if c.startswith('prob_')]: return cols
    raise UserError(f"{run}: no metrics.json or preds_*.csv to read the class order from; the run did not finish")

def load_run(run, checkpoint:str='last', dls=None, settings:Settings|None=None) -> tuple[Recipe, object]:
    """The recipe and learner of a finished run: the model of `models/<checkpoint>.pth` on `dls` (default: the recipe's data,
    which must still be where the recipe says), in fp32 on the CPU or the GPU, without loading pretrained weights again."""
    run = Path(run)
    recipe = run_recipe(run)
    if checkpoint not in CHECKPOINTS: raise UserError(f"checkpoint {checkpoint!r}: choose {' or '.join(CHECKPOINTS)}")
    if not (run/'models'/f'{checkpoint}.pth').is_file(): raise UserError(f"{run}: no models/{checkpoint}.pth; the run did not finish an epoch")
    recipe = recipe.model_copy(update=dict(model=recipe.model.model_copy(update=dict(weights=None)),
                                           train=recipe.train.model_copy(update=dict(precision='fp32', device='auto'))))
    dls = dls or recipe_dataloaders(recipe, settings)
    learn = recipe_learner(recipe, dls, settings, path=run)
    try: learn.load(checkpoint, with_opt=False)
    except RuntimeError as e: raise UserError(f"{run/'models'/(checkpoint+'.pth')}: does not fit the recipe's model ({str(e).splitlines()[0]})") from None
    return recipe, learn
