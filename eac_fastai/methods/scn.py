"""Self-Cure Network (Wang et al., CVPR 2020) as in its official code (EAC_SPEC §6.2).

An importance branch α = sigmoid(Linear(features)) scales each image's logits (so CE on α·z re-weights the
images); rank regularisation pushes the mean α of the top `beta` share of the batch above the rest's by
`margin1`; from epoch `relabel_epoch` on, an image whose top probability beats its given label's by more than
`margin2` takes the predicted label, and keeps it in later epochs."""
from typing import Literal
import torch, torch.nn.functional as F
from pydantic import Field
from torch import nn, Tensor
from fastai.callback.hook import hook_output
from fastai.layers import Flatten
from ..config import Section
from .relabel import RelabelCallback

__all__ = ['SCNHead', 'rank_regularization', 'RELABEL_GROUPS', 'SCNSection', 'SCNCallback']

RELABEL_GROUPS = ('all', 'low', 'none')

class SCNHead(nn.Module):
    "Global average pool → (dropout) → logits `fc(x)` scaled by the importance `sigmoid(importance(x))`."
    def __init__(self, nf:int, n_out:int, drop:float=0.):
        super().__init__()
        self.pool, self.flatten, self.drop = nn.AdaptiveAvgPool2d(1), Flatten(), nn.Dropout(drop)
        self.importance = nn.Sequential(nn.Linear(nf, 1), nn.Sigmoid())
        self.fc = nn.Linear(nf, n_out)
    def forward(self, x):
        x = self.drop(self.flatten(self.pool(x)))
        return self.importance(x) * self.fc(x)

def rank_regularization(alpha:Tensor, beta:float=0.7, margin:float=0.15) -> Tensor:
    "`max(0, margin − (mean α of the top ⌊beta·N⌋ images − mean α of the others))`; 0 when a group is empty."
    n = alpha.shape[0]
    k = int(n*beta)
    if k == 0 or k == n: return alpha.new_zeros(())
    high, low = alpha.topk(k).values.mean(), alpha.topk(n - k, largest=False).values.mean()
    return (margin - (high - low)).clamp(min=0)

class SCNSection(Section):
    "Self-Cure Network, CVPR'20 (method: scn)."
    beta: float = Field(0.7, gt=0, lt=1, description="share of each batch in the high-importance group")
    margin1: float = Field(0.15, ge=0, description="rank-regularisation margin (SCN README: 0.07 at batch 64)")
    margin2: float = Field(0.2, ge=0, description="relabelling margin")
    relabel_epoch: int = Field(10, ge=1, description="first epoch (1-based) that relabels")
    relabel: Literal[RELABEL_GROUPS] = Field('all', description="all: every image (official code); low: the "
                                             "low-importance group (paper)")
    drop: float = Field(0., ge=0, lt=1, description="dropout before the importance and class layers")

class SCNCallback(RelabelCallback):
    """SCN: CE on importance-scaled logits + rank regularisation, and relabelling of doubtful images from
    `relabel_epoch` on. Settings: the fields of `SCNSection`; its basic aug officially flips or adds noise."""
    terms, config, basic_ops = ('train_ce', 'train_rank_reg'), SCNSection, ('flip', 'noise')
    _stateattrs = ('hook', 'sums', 'term_metrics', 'batch_idx')

    def head(self, nf:int, n_out:int, fmap) -> nn.Module: return SCNHead(nf, n_out, self.drop)

    def setup(self):
        model = getattr(self.learn.model, 'module', self.learn.model)
        if not isinstance(model[1], SCNHead):
            raise ValueError("SCNCallback needs a model whose head is an SCNHead (eac_learner(method='scn') builds it)")
        self.hook = hook_output(model[1].importance, detach=False)
        super().setup()

    def after_loss(self):
        alpha, self.hook.stored = self.hook.stored[:, 0], None
        rr = rank_regularization(alpha.float(), self.beta, self.margin1)
        self.learn.loss_grad = self.learn.loss_grad + rr
        self.accumulate(self.learn.loss, rr)
        if self.relabel == 'none': return
        allowed = None
        if self.relabel == 'low':                      # the low-importance group: all but the top ⌊beta·N⌋
            allowed = torch.ones_like(self.y, dtype=torch.bool)
            allowed[alpha.detach().topk(int(len(alpha)*self.beta)).indices] = False
        self.relabel_batch(F.softmax(self.pred.detach().float(), 1), self.margin2, allowed)

    def cleanup(self):
        if getattr(self, 'hook', None) is not None: self.hook.remove()
        self.hook = None
