"""Training methods as fastai callbacks: the shared batch augmentation, EAC and Guo et al.'s Attention Consistency.

`MethodCallback` is the base of every method (SCN and RUL live in `scn.py` and `rul.py`): it augments the
training batch and logs per-epoch means of the method's loss terms as metrics."""
from contextlib import ExitStack, contextmanager
from functools import partial
import torch
from torch import nn
from fastai.callback.core import Callback
from fastai.callback.hook import hook_output
from fastai.data.transforms import Normalize
from fastai.learner import ValueMetric
from fastcore.basics import store_attr
from .augment import BasicAug, Crop, Erasing, Flip
from .cam import check_consistency, class_activation_maps, flip_consistency, linear_head

__all__ = ['AugmentCallback', 'MethodCallback', 'EACCallback', 'ACCallback', 'normalize_stats', 'per_view_batchnorm']

def normalize_stats(dls):
    "The (mean, std) of the `Normalize` in `dls.after_batch`, or None when the batch is not normalised."
    norm = [t for t in dls.after_batch.fs if isinstance(t, Normalize)]
    return (norm[0].mean, norm[0].std) if norm else None

def _chunked_batchnorm(bn, views:int, x):
    "`bn`'s own forward on each of `views` chunks of the batch in turn (training), or on the whole batch (eval)."
    forward = type(bn).forward
    return torch.cat([forward(bn, c) for c in x.chunk(views)]) if bn.training else forward(bn, x)

@contextmanager
def per_view_batchnorm(model:nn.Module, views:int=2):
    """Inside, every BatchNorm of `model` normalises each of `views` equal parts of its batch with that part's statistics
    and updates its running statistics once per part, in order: one forward over the concatenated views computes what
    `views` separate forward calls would (per-view BatchNorm, as the official two-call EAC step has)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns: bn.forward = partial(_chunked_batchnorm, bn, views)
    try: yield
    finally:
        for bn in bns: vars(bn).pop('forward', None)

class AugmentCallback(Callback):
    """The official augmentation of the training batch: (CIFAR crop), (an independent flip), basic aug (Gaussian noise
    or flip), then per-image random erasing."""
    order, run_valid = 5, False                        # before GradientAccumulation (6) and MixedPrecision (10)
    flip = None                                        # EAC and AC take none: they make the mirrored view themselves
    def __init__(self,
                 erase:Erasing|None=Erasing(),         # per-image random erasing (None: off)
                 basic:BasicAug|None=BasicAug(),       # the official basic aug: noise (or flip) with p 0.5 (None: off)
                 crop:Crop|None=None,                  # CIFAR-style padded random crop (None: off)
                 flip:Flip|None=None):                 # a flip apart from `basic` (None: off; fair baseline: p 0.5)
        store_attr()
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
        if self.learn.lock.locked(): return            # validate/get_preds/predict also fire before_fit: nothing to set up
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
        if hasattr(self.learn, 'lr_finder'): self.learn.loss = self.learn.loss_grad.detach().clone()  # lr_find tracks the whole objective

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
        if getattr(self, 'term_metrics', None): self.learn.metrics = [m for m in self.learn.metrics if m not in self.term_metrics]
        self.term_metrics = None

    def after_fit(self):
        if not self.learn.lock.locked(): self._detach()

class _CAMConsistency(MethodCallback):
    "Shared part of EAC and AC: body features kept by a hook, CAMs from the detached fc weight, `lam` × flip consistency."
    terms = ('train_ce', 'train_consistency')
    _stateattrs = ('hook', 'x_flip', 'consistency_loss', 'sums', 'body', 'fc', 'term_metrics', 'per_view')
    def setup(self):
        model = getattr(self.learn.model, 'module', self.learn.model)
        self.body, self.fc = model[0], linear_head(model)
        self.hook = hook_output(self.body, detach=False)

    def check(self):
        "Refuse a negative `ramp` or an unknown `consistency` at construction."
        if self.ramp < 0: raise ValueError(f"ramp must be ≥ 0 epochs, got {self.ramp}")
        check_consistency(self.consistency)

    def cams(self, features): return class_activation_maps(features, self.fc.weight.detach())  # the bias is not used
    def flip_consistency(self, cams, cams_of_flipped): return flip_consistency(cams, cams_of_flipped, self.consistency)
    def weight(self) -> float:
        "`lam`, or while training is within its first `ramp` epochs, `lam` × the share of them done (linear ramp-up)."
        if not self.ramp: return self.lam
        return self.lam*min(1., (self.epoch + self.iter/self.n_iter)/self.ramp)

    def after_loss(self):
        self.learn.loss_grad = self.learn.loss_grad + self.weight()*self.consistency_loss
        self.accumulate(self.learn.loss, self.consistency_loss)

    def cleanup(self):
        if getattr(self, 'hook', None) is not None: self.hook.remove()
        if getattr(self, 'per_view', None) is not None: self.per_view.close()
        self.hook = self.x_flip = self.consistency_loss = self.per_view = None

class EACCallback(_CAMConsistency):
    "Erasing Attention Consistency: CE on the original view only, plus `lam` × MSE of its CAMs and the flipped view's, flipped back."
    def __init__(self,
                 lam:float=5.,                         # weight of the consistency term
                 mode:str='noisy',                     # 'noisy': each view erased independently; 'clean': flipped view mirrors the original exactly
                 erase:Erasing|None=Erasing(),         # per-image random erasing (None: off)
                 basic:BasicAug|None=BasicAug(),       # basic aug of the original view only (None: off); no flip op
                 crop:Crop|None=None,                  # CIFAR-style crop, shared by both views (None: off)
                 one_forward:bool=False,               # both views in one pass, BatchNorm still per view (speed)
                 ramp:float=0.,                        # epochs the weight takes to rise linearly from 0 to lam (0: off)
                 consistency:str='mse'):               # 'mse' (official), 'relative', 'normalized'
        if mode not in ('noisy', 'clean'): raise ValueError(f"mode must be 'noisy' or 'clean', got {mode!r}")
        if basic is not None and 'flip' in basic.ops: raise ValueError("EAC's basic aug cannot flip: the flipped view must mirror the original")
        store_attr(); self.check()

    def before_batch(self):
        x = self.crop_batch(self.x)
        if self.mode == 'noisy': view, flipped = self.augment(x), self.augment(x.flip(-1), basic=False)
        else: view = self.augment(x); flipped = view.flip(-1)
        if self.one_forward:                           # one pass over [view; flipped], each half with its own BatchNorm statistics
            self.learn.xb, self.x_flip = (torch.cat([view, flipped]), *self.xb[1:]), None
            self.per_view = ExitStack(); self.per_view.enter_context(per_view_batchnorm(self.body, 2))
        else: self.learn.xb, self.x_flip = (view, *self.xb[1:]), flipped

    def after_pred(self):
        features, self.hook.stored = self.hook.stored, None   # hold no graph on the module (deepcopy, memory)
        if self.one_forward:
            self.per_view.close(); self.per_view = None
            features, flipped = features.chunk(2)
            self.learn.pred = self.pred[:len(features)]        # the flipped view's logits are not used (imbalanced framework)
        else: flipped, self.hook.stored = self.body(self.x_flip), None   # its own forward call (own BatchNorm statistics, as officially)
        self.consistency_loss = self.flip_consistency(self.cams(features), self.cams(flipped))

class ACCallback(_CAMConsistency):
    """Attention Consistency (Guo et al., CVPR 2019): the original and its exact mirror in one forward pass (shared BatchNorm
    statistics, as the official code concatenates them), CE on both (mean over the 2N images), plus `lam` × flip consistency."""
    def __init__(self,
                 lam:float=1.,                         # weight of the consistency term (all of AC's loss weights are 1)
                 erase:Erasing|None=None,              # AC erases nothing; when set, the mirror keeps the erased box
                 basic:BasicAug|None=BasicAug(),       # basic aug before mirroring (None: off); no flip op
                 crop:Crop|None=None,
                 ramp:float=0.,                        # epochs the weight takes to rise linearly from 0 to lam (0: off)
                 consistency:str='mse'):               # 'mse' (official), 'relative', 'normalized'
        if basic is not None and 'flip' in basic.ops: raise ValueError("AC's basic aug cannot flip: the second view is the mirror")
        store_attr(); self.check()

    def before_batch(self):
        view = self.augment(self.crop_batch(self.x))
        self.learn.xb = (torch.cat([view, view.flip(-1)]), *self.xb[1:])
        self.learn.yb = tuple(torch.cat([y, y]) for y in self.yb)

    def after_pred(self):
        features, self.hook.stored = self.hook.stored, None
        cams, cams_flipped = self.cams(features).chunk(2)
        self.consistency_loss = self.flip_consistency(cams, cams_flipped)
