"""Experiment tracking through fastai's own callbacks (`train.loggers`): TensorBoard and Weights & Biases, each with
every column of history.csv (the method's loss terms, the memorisation columns) and the resolved recipe. history.csv
(`csv`) is always written."""
import importlib.util, netrc, os
from pathlib import Path
from fastai.callback.core import Callback
from fastai.learner import Recorder

__all__ = ['LOGGERS', 'logger_problem', 'WandbConfig', 'WandbFinish', 'logger_callbacks']

LOGGERS = {'csv': None, 'tensorboard': 'tensorboard', 'wandb': 'wandb'}
"Each logger `train.loggers` takes, and the package (and eac-fastai extra) it needs."

def _wandb_login_problem() -> str|None:
    if os.environ.get('WANDB_MODE') in ('offline', 'disabled', 'dryrun') or os.environ.get('WANDB_API_KEY'): return None
    try: found = netrc.netrc().authenticators('api.wandb.ai')
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

def logger_callbacks(loggers, run:Path, config:dict, recipe_yaml:str) -> list[Callback]:
    """fastai's callbacks for `loggers`, writing under the run folder `run`; `config`: the resolved recipe. W&B's run
    is started here (named and identified after the folder, so a resumed run continues it)."""
    cbs = []
    if 'tensorboard' in loggers:
        from .tensorboard import RunTensorBoard
        cbs.append(RunTensorBoard(run/'tensorboard', recipe_yaml))
    if 'wandb' in loggers:
        import wandb
        from fastai.callback.wandb import WandbCallback
        wandb.init(project=os.environ.get('WANDB_PROJECT', 'eac-fastai'), name=run.name, id=run.name,
                   resume='allow', dir=run, config=config)
        cbs += [WandbConfig(), WandbCallback(log_preds=False, log_model=False), WandbFinish()]
    return cbs
