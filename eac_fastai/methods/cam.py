"""Class activation maps (CAMs) of a GAP → Linear head, the flip-consistency loss, and the callback base EAC and
Attention Consistency share."""
import torch, torch.nn.functional as F
from torch import nn, Tensor
from fastai.callback.hook import hook_output
from pydantic import Field
from ..config import Section
from .base import MethodCallback

__all__ = ['CONSISTENCIES', 'check_consistency', 'class_activation_maps', 'flip_consistency', 'linear_head',
           'ramp_field', 'consistency_field', 'RampedSection', 'CAMConsistencyCallback']

def class_activation_maps(features:Tensor, weight:Tensor) -> Tensor:
    "CAMs of every class: `M[n,k,h,w] = Σ_c weight[k,c] · features[n,c,h,w]` (no bias, no ReLU, no normalisation)."
    return torch.einsum('nchw,kc->nkhw', features, weight.to(features.dtype))

CONSISTENCIES = ('mse', 'relative', 'normalized')

def check_consistency(kind:str) -> str:
    "`kind` if it is one of `CONSISTENCIES`; ValueError otherwise."
    if kind not in CONSISTENCIES:
        raise ValueError(f"consistency must be one of {', '.join(CONSISTENCIES)}, got {kind!r}")
    return kind

def flip_consistency(cams:Tensor, cams_of_flipped:Tensor, kind:str='mse') -> Tensor:
    """Mean squared error between `cams` and the flipped image's CAMs flipped back, over batch, classes, height, width
    (`kind` 'mse', the official term); 'relative': that MSE ÷ the detached mean squared CAM of the two views (its value
    does not change when the features shrink, its gradient still shrinks them); 'normalized': each image's MSE ÷ its
    two views' mean squared CAM, not detached, averaged over the batch (no gradient along the features' scale)."""
    a, b = cams.float(), cams_of_flipped.flip(-1).float()
    tiny = torch.finfo(a.dtype).tiny
    if check_consistency(kind) == 'mse': return F.mse_loss(a, b)
    if kind == 'relative':
        return F.mse_loss(a, b)/((a.square().mean() + b.square().mean())/2).detach().clamp_min(tiny)
    a, b = a.flatten(1), b.flatten(1)
    return ((a - b).square().mean(1)/((a.square().mean(1) + b.square().mean(1))/2).clamp_min(tiny)).mean()

def linear_head(model:nn.Module) -> nn.Linear:
    "The last `nn.Linear` of `model`, whose weight turns body features into class scores."
    lins = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not lins: raise ValueError("the model has no nn.Linear layer to build class activation maps from")
    return lins[-1]

def ramp_field():
    "The `ramp` setting of a consistency method's section."
    return Field(0., ge=0, description="epochs over which the consistency weight rises linearly from 0 to lam, at most "
                 "train.epochs (0: off, the official; README: EAC's consistency options)")

def consistency_field():
    "The `consistency` setting of a consistency method's section."
    return Field('mse', description="mse: the official MSE of the two views' CAMs; relative: that MSE ÷ their detached "
                 "mean squared CAM (a value shrinking the features cannot lower); normalized: each image's MSE ÷ its "
                 "views' mean squared CAM, not detached (no gradient along the features' scale)")

class RampedSection(Section):
    "A section with `ramp` (epochs): checked against the recipe's `train.epochs`."
    def epochs_problem(self, epochs:int) -> str|None:
        "Why this section does not fit a training of `epochs` epochs."
        if self.ramp > epochs:
            return f"ramp: {self.ramp:g} epochs is longer than train.epochs ({epochs}); give at most {epochs}"

class CAMConsistencyCallback(MethodCallback):
    """Shared part of EAC and AC: body features kept by a hook, CAMs from the detached fc weight, `lam` × flip
    consistency."""
    terms, mirrors = ('train_ce', 'train_consistency'), True
    _stateattrs = ('hook', 'x_flip', 'consistency_loss', 'sums', 'body', 'fc', 'term_metrics', 'per_view')
    def setup(self):
        model = getattr(self.learn.model, 'module', self.learn.model)
        self.body, self.fc = model[0], linear_head(model)
        self.hook = hook_output(self.body, detach=False)

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
