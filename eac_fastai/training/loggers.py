"""Experiment tracking through fastai's own callbacks (`train.loggers`): TensorBoard and Weights & Biases, each with
every column of history.csv (the method's loss terms, the memorisation columns) and the resolved recipe. history.csv
(`csv`) is always written."""
import importlib.util, netrc, os, uuid
from pathlib import Path
from urllib.parse import urlparse
from fastai.callback.core import Callback
from fastai.learner import Recorder
from ..errors import UserError
from ..files import write_atomic

__all__ = ['LOGGERS', 'logger_problem', 'WandbConfig', 'WandbFinish', 'logger_callbacks']

LOGGERS = {'csv': None, 'tensorboard': 'tensorboard', 'wandb': 'wandb'}
"Each logger `train.loggers` takes, and the package (and eac-fastai extra) it needs."

def _wandb_login_problem() -> str|None:
    if os.environ.get('WANDB_MODE') in ('offline', 'disabled', 'dryrun') or os.environ.get('WANDB_API_KEY'): return None
    host = urlparse(os.environ.get('WANDB_BASE_URL') or 'https://api.wandb.ai').hostname
    try: found = netrc.netrc().authenticators(host)
    except (OSError, netrc.NetrcParseError): found = None
    if found is None:
        return ("train.loggers: wandb has no login here; run `wandb login`, set WANDB_API_KEY, or log offline with "
                "WANDB_MODE=offline (upload later with `wandb sync`)")

def logger_problem(loggers) -> str|None:
    "Why `loggers` cannot log here: a missing package (and the extra to install), or W&B without a login."
    for name in loggers:
        if (package := LOGGERS[name]) and importlib.util.find_spec(package) is None:
            return (f"train.loggers: {name} needs the {package} package, which is not installed; "
                    f"pip install 'eac-fastai[{name}]' (or drop {name})")
    if 'wandb' in loggers: return _wandb_login_problem()

class WandbConfig(Callback):
    """Gives fastai's `WandbCallback` no learner arguments to add to the W&B config, which holds the recipe: its
    `gather_args` fails on a tracker callback's numpy comparison (`vars()` of a ufunc)."""
    order = Recorder.order + 0.5                       # before WandbCallback
    def before_fit(self): self.learn.gather_args = dict
    def after_fit(self): vars(self.learn).pop('gather_args', None)

class WandbFinish(Callback):
    "Ends the W&B run after fastai's `WandbCallback` has logged the last epoch."
    order = Recorder.order + 2
    def after_fit(self):
        import wandb
        wandb.finish()

def _wandb_id(run:Path) -> str:
    "The W&B run id of the run folder `run`: drawn once and kept in `run/wandb/id`, so `--resume` continues it."
    f = run/'wandb'/'id'
    if f.is_file(): return f.read_text().strip()
    f.parent.mkdir(exist_ok=True)
    write_atomic(f, wid := f"{run.name}-{uuid.uuid4().hex[:8]}")
    return wid

def logger_callbacks(loggers, run:Path, recipe) -> list[Callback]:
    """fastai's callbacks for `loggers`, writing under the run folder `run`, each given the resolved `recipe`. W&B's
    run is started here (named after the folder, with an id kept in it, so a resumed run continues it)."""
    from .recipe import recipe_yaml
    cbs = []
    if 'tensorboard' in loggers:
        from .tensorboard import RunTensorBoard
        cbs.append(RunTensorBoard(run/'tensorboard', recipe_yaml(recipe)))
    if 'wandb' in loggers:
        import wandb
        from fastai.callback.wandb import WandbCallback
        try: wandb.init(project=os.environ.get('WANDB_PROJECT', 'eac-fastai'), name=run.name, id=_wandb_id(run),
                        resume='allow', dir=run, config=recipe.model_dump(mode='json'))
        except Exception as e:
            raise UserError(f"train.loggers: wandb could not start its run ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:200] if str(e) else ''}); check `wandb login` and the network, "
                            "or log offline with WANDB_MODE=offline") from None
        cbs += [WandbConfig(), WandbCallback(log_preds=False, log_model=False), WandbFinish()]
    return cbs
