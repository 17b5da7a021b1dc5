"""The base of every training method: the official augmentation of the training batch, settings validated by the
method's recipe section, and the per-epoch means of the method's loss terms logged as metrics."""
from functools import partial
import torch
from fastai.callback.core import Callback
from fastai.data.transforms import Normalize
from fastai.learner import ValueMetric
from ..config import Section
from ..data.augment import BasicAug, Crop, Erasing, Flip

__all__ = ['normalize_stats', 'flip_problem', 'AugmentCallback', 'MethodCallback']

def normalize_stats(dls):
    "The (mean, std) of the `Normalize` in `dls.after_batch`, or None when the batch is not normalised."
    norm = [t for t in dls.after_batch.fs if isinstance(t, Normalize)]
    return (norm[0].mean, norm[0].std) if norm else None

def flip_problem(method:str, cls, basic:BasicAug|None, flip:Flip|None) -> str|None:
    """Why `method` (its callback class `cls`) cannot take this augmentation: a method that mirrors makes the flipped
    view."""
    if not cls.mirrors: return None
    if basic is not None and 'flip' in (basic.ops or ()):
        return f"augment.basic.ops: method {method} makes the flipped view itself; remove flip"
    if flip is not None: return f"augment.flip: method {method} makes the flipped view itself; set augment.flip to null"

class AugmentCallback(Callback):
    """The official augmentation of the training batch: (CIFAR crop), (an independent flip), basic aug (Gaussian noise
    or flip), then per-image random erasing. Alone, the CE baseline's callback; the base of every method."""
    order, run_valid = 5, False                        # before GradientAccumulation (6) and MixedPrecision (10)
    config = Section                                   # the method's recipe section: its settings, defaults and checks
    labels_per_image = 1                               # labels per training image in the batch the loss sees
    basic_ops = ('noise',)                             # the official basic aug's ops (what `BasicAug(ops=None)` means)
    mirrors = False                                    # makes the mirrored view itself: no flip op, no separate flip
    def __init__(self,
                 erase:Erasing|None=Erasing(),         # per-image random erasing (None: off)
                 basic:BasicAug|None=BasicAug(),       # the official basic aug: noise (or flip) with p 0.5 (None: off)
                 crop:Crop|None=None,                  # CIFAR-style padded random crop (None: off)
                 flip:Flip|None=None,                  # a flip apart from `basic` (None: off; fair baseline: p 0.5)
                 **settings):                          # the method's settings: the fields of its `config`
        if basic is not None and basic.ops is None: basic = basic.model_copy(update=dict(ops=list(self.basic_ops)))
        if problem := flip_problem(self.name, type(self), basic, flip): raise ValueError(problem)
        self.erase, self.basic, self.crop, self.flip = erase, basic, crop, flip
        for k, v in self.config(**settings): setattr(self, k, v)

    def before_fit(self): self.stats = normalize_stats(self.dls)
    def crop_batch(self, x): return x if self.crop is None else self.crop(x, self.stats)
    def augment(self, x, basic:bool=True):
        "`x` with the flip and basic aug (when `basic`: the original view) and erasing applied."
        if basic and self.flip is not None: x = self.flip(x)
        if basic and self.basic is not None: x = self.basic(x, self.stats)
        return x if self.erase is None else self.erase(x)
    def before_batch(self): self.learn.xb = (self.augment(self.crop_batch(self.x)), *self.xb[1:])

class MethodCallback(AugmentCallback):
    "Base of the method callbacks: augmentation, plus the epoch means of `terms` (loss terms) logged as metrics."
    terms = ()
    def before_fit(self):
        super().before_fit()
        # validate/get_preds/predict also fire before_fit: nothing to set up
        if self.learn.lock.locked(): return
        self._detach()                                 # what a fit interrupted by an exception left behind
        self.term_metrics = [ValueMetric(partial(self.epoch_mean, i), n) for i, n in enumerate(self.terms)]
        self.learn.metrics = [*self.learn.metrics, *self.term_metrics]
        self.setup()
        self.before_train()

    def setup(self): "Per-fit set-up of a method (hooks, state)."
    def before_train(self): self.sums, self.n_seen = 0., 0
    def accumulate(self, *values):
        "Add this batch's loss terms (in the order of `terms`) to the epoch sums; no device sync per batch."
        n = self.x.shape[0]
        self.sums = self.sums + torch.stack([v.detach().float() for v in values])*n
        self.n_seen += n
        if hasattr(self.learn, 'lr_finder'):           # lr_find tracks the whole objective
            self.learn.loss = self.learn.loss_grad.detach().clone()

    def epoch_mean(self, i:int):
        "Mean over this epoch's training images of the `i`-th of `terms`."
        sums = vars(self).get('sums')                   # absent in a learner exported after an interrupted fit
        return (sums[i]/self.n_seen).item() if torch.is_tensor(sums) and self.n_seen else None

    def cleanup(self): "Undo `setup`."
    def method_state(self) -> dict:
        "What the method carries from epoch to epoch besides the model (kept in `models/resume.pth`)."
        return {}
    def load_method_state(self, state:dict): "Take back what `method_state` returned."
    def _detach(self):
        "Undo `setup` and remove the logging metrics from the learner."
        self.cleanup()
        if getattr(self, 'term_metrics', None):
            self.learn.metrics = [m for m in self.learn.metrics if m not in self.term_metrics]
        self.term_metrics = None

    def after_fit(self):
        if not self.learn.lock.locked(): self._detach()
