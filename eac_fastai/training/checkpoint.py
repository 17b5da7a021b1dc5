"""Checkpoints of a run, written atomically after every epoch, and resuming from them exactly.

`models/best.pth` and `models/last.pth` are fastai checkpoints (`learn.load`). `models/resume.pth` holds everything a
run needs to continue as if never stopped: weights and optimizer state, the finished epoch, the random number
generators (Python, NumPy, torch, CUDA, each DataLoader's own), fastai's smoothed loss, the best metric so far, the
learning rate chosen, the mixed-precision loss scale, the method's state (SCN's relabels) and the resolved recipe the
run started with (resuming refuses an edited one). Every file goes through a temporary file and a rename, so a kill
leaves the previous epoch's checkpoint whole."""
import random
from contextlib import contextmanager
import numpy as np, pandas as pd, torch
from fastai.callback.core import Callback
from fastai.callback.progress import CSVLogger
from fastai.callback.tracker import TrackerCallback
from fastai.learner import CancelEpochException
from fastai.torch_core import get_model
from fastcore.basics import store_attr
from ..methods.base import MethodCallback
from ..errors import UserError
from ..files import save_atomic, write_atomic

__all__ = ['RESUME', 'RESUME_KEYS', 'rng_states', 'set_rng_states', 'CheckpointCallback', 'HistoryLogger',
           'restore_training_state', 'starting_at']

RESUME = 'resume.pth'
# what resuming reads from it
RESUME_KEYS = ('epoch', 'n_epoch', 'model', 'opt', 'rng', 'best', 'lr', 'train_iter', 'smooth_loss', 'methods')

def rng_states(dls=None) -> dict:
    "The states of Python's, NumPy's, torch's (CPU and CUDA) generators, and of each loader of `dls` (its shuffling)."
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return dict(python=random.getstate(), numpy=dict(kind=kind, keys=torch.from_numpy(keys.astype(np.int64)), pos=pos,
                                                      has_gauss=has_gauss, cached=cached),
                torch=torch.get_rng_state(), cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                loaders=[dl.rng.getstate() for dl in dls.loaders] if dls is not None else [])

def set_rng_states(state:dict, dls=None):
    "Put every generator back in the state `rng_states` recorded."
    n = state['numpy']
    random.setstate(state['python']); torch.set_rng_state(state['torch'])
    np.random.set_state((n['kind'], n['keys'].numpy().astype(np.uint32), n['pos'], n['has_gauss'], n['cached']))
    if state['cuda'] and torch.cuda.is_available(): torch.cuda.set_rng_state_all(state['cuda'])
    if dls is not None:
        for dl, s in zip(dls.loaders, state['loaders']): dl.rng.setstate(s)

class CheckpointCallback(TrackerCallback):
    """After every epoch, atomically: `models/best.pth` when `monitor` improves, `models/last.pth` (with the optimizer
    when `with_opt`) and, when `resumable`, `models/resume.pth`; the learner keeps the last weights."""
    order = TrackerCallback.order + 1
    def __init__(self, monitor:str='accuracy', with_opt:bool=True, resumable:bool=True, lr:float|None=None,
                 best:float|None=None, recipe:dict|None=None):
        super().__init__(monitor=monitor)
        store_attr('with_opt,resumable,lr,recipe')
        self.initial_best = best                       # the best so far of the run this fit resumes
    def before_fit(self):
        super().before_fit()
        if self.initial_best is not None: self.best = self.initial_best

    def _file(self, name): return self.path/self.model_dir/f'{name}.pth'
    def after_epoch(self):
        super().after_epoch()
        weights = get_model(self.model).state_dict()
        if self.new_best: save_atomic(weights, self._file('best'))
        opt = self.opt.state_dict() if self.opt is not None else None
        save_atomic(dict(model=weights, opt=opt) if self.with_opt and opt is not None else weights, self._file('last'))
        if self.resumable: save_atomic(self.training_state(weights, opt), self.path/self.model_dir/RESUME)

    def training_state(self, weights, opt) -> dict:
        "What `models/resume.pth` holds after this epoch."
        smooth = self.recorder.smooth_loss
        methods = {type(cb).__name__: cb.method_state() for cb in self.cbs if isinstance(cb, MethodCallback)}
        return dict(epoch=self.epoch, n_epoch=self.n_epoch, recipe=self.recipe, model=weights, opt=opt,
                    rng=rng_states(self.dls),
                    best=float(self.best), lr=self.lr, train_iter=self.train_iter,
                    smooth_loss=dict(val=float(smooth.val), count=smooth.count), methods=methods,
                    # fp16's loss scale
                    scaler=scaler.state_dict() if (scaler := vars(self.learn).get('scaler')) is not None else None)

class HistoryLogger(CSVLogger):
    """fastai's `CSVLogger`, which appends to an existing history without a second header line when `append`; a history
    written by an earlier version gains the columns this one logs (empty for its epochs)."""
    def before_fit(self):
        f = self.path/self.fname
        if not (self.append and f.is_file() and f.stat().st_size): return super().before_fit()
        old, names = pd.read_csv(f), list(self.recorder.metric_names)
        if list(old.columns) != names:
            if set(old.columns) - set(names):
                raise UserError(f"{f}: has columns this run does not log ({', '.join(set(old.columns) - set(names))})"
                                "; resume it with the eac-fastai version that started it")
            write_atomic(f, old.reindex(columns=names).to_csv(index=False))
        self.file = f.open('a')
        self.old_logger, self.learn.logger = self.logger, self._write_line

class _Resume(Callback):
    "Restores the generators, fastai's counters and smoothed loss of `state` just before the first resumed epoch."
    order = -100
    def __init__(self, state:dict): self.state = state
    def before_epoch(self):
        if self.state is None: return
        s, self.state = self.state, None
        set_rng_states(s['rng'], self.dls)
        self.learn.train_iter = s['train_iter']
        self.recorder.smooth_loss.val = torch.tensor(s['smooth_loss']['val'], device=self.dls.device)
        self.recorder.smooth_loss.count = s['smooth_loss']['count']
        if s.get('scaler') and vars(self.learn).get('scaler') is not None:
            self.learn.scaler.load_state_dict(s['scaler'])

def restore_training_state(learn, state:dict, source='checkpoint'):
    """Load the weights, optimizer state and method state of a `models/resume.pth` into `learn`; a `UserError` naming
    `source` if they do not fit."""
    try:
        get_model(learn.model).load_state_dict(state['model'])
        if learn.opt is None: learn.create_opt()
        learn.opt.load_state_dict(state['opt'])
    except (KeyError, ValueError, RuntimeError) as e:
        raise UserError(f"{source}: does not fit the run's model or optimizer "
                        f"({type(e).__name__}: {str(e).splitlines()[0]}); "
                        "was recipe.yaml edited? restore it or start a new run") from None
    for cb in learn.cbs.filter(lambda c: isinstance(c, MethodCallback)):
        cb.load_method_state(state['methods'].get(type(cb).__name__, {}))

@contextmanager
def starting_at(learn, state:dict):
    """Inside, `learn.fit` runs only the epochs after `state['epoch']`, as if the earlier ones had just run: every
    generator, fastai's counters and smoothed loss restored at the start of the first of them (`restore_training_state`
    first)."""
    first = state['epoch'] + 1
    # fastai's epoch loop from `first` on (fastai's SkipToEpoch would fire after_epoch for skipped ones)
    def _do_fit():
        for epoch in range(first, learn.n_epoch):
            learn.epoch = epoch
            learn._with_events(learn._do_epoch, 'epoch', CancelEpochException)
    learn._do_fit = _do_fit
    try:
        with learn.added_cbs(_Resume(state)): yield
    finally: del learn._do_fit
