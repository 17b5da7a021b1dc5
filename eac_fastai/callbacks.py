"The EAC training step as fastai callbacks: augmentation, the flipped view and the CAM consistency loss."
from functools import partial
import torch
from fastai.callback.core import Callback
from fastai.callback.hook import hook_output
from fastai.data.transforms import Normalize
from fastai.learner import ValueMetric
from fastcore.basics import store_attr
from .augment import Erasing, GaussianNoise
from .cam import class_activation_maps, flip_consistency, linear_head

__all__ = ['AugmentCallback', 'EACCallback', 'normalize_stats']

def normalize_stats(dls):
    "The (mean, std) of the `Normalize` in `dls.after_batch`, or None when the batch is not normalised."
    norm = [t for t in dls.after_batch.fs if isinstance(t, Normalize)]
    return (norm[0].mean, norm[0].std) if norm else None

class AugmentCallback(Callback):
    "The official basic augmentation of the training batch: Gaussian noise, then per-image random erasing."
    order, run_valid = 5, False                        # before GradientAccumulation (6) and MixedPrecision (10)
    def __init__(self,
                 erase:Erasing|None=Erasing(),         # per-image random erasing (None: off)
                 noise:GaussianNoise|None=GaussianNoise()): # Gaussian pixel noise (None: off)
        store_attr()
    def before_fit(self): self.stats = normalize_stats(self.dls)
    def augment(self, x, noise:bool=True):
        "`x` with noise (when `noise` and enabled) and erasing applied."
        if noise and self.noise is not None: x = self.noise(x, self.stats)
        return x if self.erase is None else self.erase(x)
    def before_batch(self): self.learn.xb = (self.augment(self.x), *self.xb[1:])

class EACCallback(AugmentCallback):
    "Erasing Attention Consistency: CE on the original view only, plus `lam` × MSE of its CAMs and the flipped view's, flipped back."
    _stateattrs = ('hook', 'x_flip', 'consistency', 'sums', 'body', 'fc', 'eac_metrics')
    def __init__(self,
                 lam:float=5.,                         # weight of the consistency term
                 mode:str='noisy',                     # 'noisy': each view erased independently; 'clean': flipped view mirrors the original exactly
                 erase:Erasing|None=Erasing(),         # per-image random erasing (None: off)
                 noise:GaussianNoise|None=GaussianNoise()): # Gaussian pixel noise on the original view (None: off)
        if mode not in ('noisy', 'clean'): raise ValueError(f"mode must be 'noisy' or 'clean', got {mode!r}")
        store_attr()

    def before_fit(self):
        super().before_fit()
        if self.learn.lock.locked(): return            # validate/get_preds/predict also fire before_fit: nothing to set up
        self._detach()                                 # what a fit interrupted by an exception left behind
        model = getattr(self.learn.model, 'module', self.learn.model)
        self.body, self.fc = model[0], linear_head(model)
        self.hook = hook_output(self.body, detach=False)
        self.eac_metrics = [ValueMetric(partial(self.epoch_mean, i), n) for i, n in enumerate(('train_ce', 'train_consistency'))]
        self.learn.metrics = [*self.learn.metrics, *self.eac_metrics]
        self.before_train()

    def before_train(self): self.sums, self.n_seen = 0., 0
    def before_batch(self):
        x = self.x
        if self.mode == 'noisy': view, flipped = self.augment(x), self.augment(x.flip(-1), noise=False)
        else: view = self.augment(x); flipped = view.flip(-1)
        self.learn.xb, self.x_flip = (view, *self.xb[1:]), flipped

    def after_pred(self):
        w = self.fc.weight.detach()                    # the CAMs train the body only; the bias is not used
        features = self.hook.stored
        flipped = self.body(self.x_flip)               # its own forward call: its own BatchNorm statistics, as officially
        self.hook.stored = None                        # hold no graph on the module (deepcopy, memory)
        self.consistency = flip_consistency(class_activation_maps(features, w), class_activation_maps(flipped, w))

    def after_loss(self):
        self.learn.loss_grad = self.learn.loss_grad + self.lam*self.consistency
        n = self.x.shape[0]                            # running sums stay on the device: no sync per batch
        self.sums = self.sums + torch.stack([self.learn.loss.detach().float(), self.consistency.detach()])*n
        self.n_seen += n
        if hasattr(self.learn, 'lr_finder'): self.learn.loss = self.learn.loss_grad.detach().clone()  # lr_find tracks the whole objective

    def epoch_mean(self, i:int):
        "Mean over this epoch's training images of CE (`i=0`) or the consistency term (`i=1`)."
        return (self.sums[i]/self.n_seen).item() if self.n_seen else None

    def _detach(self):
        "Remove the feature hook and the logging metrics from the learner."
        if getattr(self, 'hook', None) is not None: self.hook.remove()
        if getattr(self, 'eac_metrics', None): self.learn.metrics = [m for m in self.learn.metrics if m not in self.eac_metrics]
        self.hook = self.eac_metrics = self.x_flip = self.consistency = None

    def after_fit(self):
        if not self.learn.lock.locked(): self._detach()
