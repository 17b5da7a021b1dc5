("Learning-rate schedules: the paper's per-epoch exponential decay, torch's per-epoch cosine annealing, and fastai's "
 "one-cycle and flat-cos.")
import math
from fastai.callback.schedule import ParamScheduler

__all__ = ['SCHEDULES', 'step_exp', 'step_cos', 'fit_with_schedule']

SCHEDULES = ('exp', 'cosine', 'constant', 'one_cycle', 'flat_cos')

def _epoch(pos:float, n_epoch:int) -> int: return min(int(math.floor(pos*n_epoch + 1e-9)), n_epoch-1)

def step_exp(lr:float, gamma:float, n_epoch:int):
    "`lr · gamma^epoch`, constant within an epoch: torch's `ExponentialLR` stepped once per epoch."
    return lambda pos: lr * gamma**_epoch(pos, n_epoch)

def step_cos(lr:float, n_epoch:int, lr_min:float=0.):
    "torch's `CosineAnnealingLR(T_max=n_epoch)` stepped once per epoch."
    return lambda pos: lr_min + (lr-lr_min)*(1 + math.cos(math.pi*_epoch(pos, n_epoch)/n_epoch))/2

def fit_with_schedule(learn, schedule:str, n_epoch:int, lr:float, gamma:float=0.9, pct_start:float|None=None, cbs=None):
    "Train `learn` for `n_epoch` epochs with peak/initial learning rate `lr` under `schedule` (a name in `SCHEDULES`)."
    cbs = list(cbs or [])
    if schedule == 'one_cycle': return learn.fit_one_cycle(n_epoch, lr, pct_start=pct_start or 0.25, cbs=cbs)
    if schedule == 'flat_cos': return learn.fit_flat_cos(n_epoch, lr, pct_start=pct_start or 0.75, cbs=cbs)
    scheds = {'exp': step_exp(lr, gamma, n_epoch), 'cosine': step_cos(lr, n_epoch), 'constant': lambda pos: lr}
    if schedule not in scheds: raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    return learn.fit(n_epoch, lr, cbs=[ParamScheduler({'lr': scheds[schedule]}), *cbs])
