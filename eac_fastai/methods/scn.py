"""Self-Cure Network (Wang et al., CVPR 2020) as in its official code (EAC_SPEC §6.2).

An importance branch α = sigmoid(Linear(features)) scales each image's logits (so CE on α·z re-weights the
images); rank regularisation pushes the mean α of the top `beta` share of the batch above the rest's by
`margin1`; from epoch `relabel_epoch` on, an image whose top probability beats its given label's by more than
`margin2` takes the predicted label, and keeps it in later epochs."""
from typing import Literal
import pandas as pd, torch, torch.nn.functional as F
from pydantic import Field
from torch import nn, Tensor
from fastai.callback.hook import hook_output
from fastai.layers import Flatten
from fastai.learner import ValueMetric
from ..data.augment import BasicAug, Crop, Erasing, Flip
from ..config import Section
from .base import MethodCallback

__all__ = ['SCNHead', 'rank_regularization', 'scn_relabel', 'RELABEL_GROUPS', 'SCNSection', 'SCNCallback']

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

def scn_relabel(probs:Tensor, labels:Tensor, margin:float=0.2, allowed:Tensor|None=None) -> tuple[Tensor, Tensor]:
    "New labels where `max prob − prob of the label > margin` (and `allowed`), and the mask of changed images."
    pmax, pred = probs.max(1)
    change = pmax - probs.gather(1, labels[:, None])[:, 0] > margin
    if allowed is not None: change &= allowed
    return torch.where(change, pred, labels), change

def _train_labels(dls) -> Tensor:
    "The class index of every training item, read without loading an image."
    items = dls.train_ds.items
    if isinstance(items, pd.DataFrame) and 'label' in items.columns:
        return torch.tensor(items.label.map(dls.vocab.o2i).to_numpy(dtype='int64'))
    ys = dls.train_ds.tls[-1]
    return torch.tensor([int(ys[i]) for i in range(len(ys))])

class SCNSection(Section):
    "Self-Cure Network, CVPR'20 (method: scn)."
    beta: float = Field(0.7, gt=0, lt=1, description="share of each batch in the high-importance group")
    margin1: float = Field(0.15, ge=0, description="rank-regularisation margin (SCN README: 0.07 at batch 64)")
    margin2: float = Field(0.2, ge=0, description="relabelling margin")
    relabel_epoch: int = Field(10, ge=1, description="first epoch (1-based) that relabels")
    relabel: Literal[RELABEL_GROUPS] = Field('all', description="all: every image (official code); low: the "
                                             "low-importance group (paper)")
    drop: float = Field(0., ge=0, lt=1, description="dropout before the importance and class layers")

class SCNCallback(MethodCallback):
    """SCN: CE on importance-scaled logits + rank regularisation, and relabelling of doubtful images from
    `relabel_epoch` on. Settings: the fields of `SCNSection`; its basic aug officially flips or adds noise."""
    terms, config, basic_ops = ('train_ce', 'train_rank_reg'), SCNSection, ('flip', 'noise')
    _stateattrs = ('hook', 'sums', 'term_metrics', 'batch_idx')
    def __init__(self, erase:Erasing|None=Erasing(), basic:BasicAug|None=BasicAug(), crop:Crop|None=None,
                 flip:Flip|None=None, **settings):
        super().__init__(erase, basic, crop, flip, **settings)
        self.labels = self.given = None

    def head(self, nf:int, n_out:int, fmap) -> nn.Module: return SCNHead(nf, n_out, self.drop)

    def setup(self):
        model = getattr(self.learn.model, 'module', self.learn.model)
        if not isinstance(model[1], SCNHead):
            raise ValueError("SCNCallback needs a model whose head is an SCNHead (eac_learner(method='scn') builds it)")
        self.hook = hook_output(model[1].importance, detach=False)
        given = _train_labels(self.dls)
        if self.given is None or not torch.equal(self.given, given): self.given, self.labels = given, given.clone()
        self.term_metrics.append(ValueMetric(self.relabelled_share, 'relabelled'))
        self.learn.metrics = [*self.learn.metrics, self.term_metrics[-1]]

    def method_state(self) -> dict: return dict(given=self.given, labels=self.labels)
    def load_method_state(self, state:dict): self.given, self.labels = state.get('given'), state.get('labels')

    def relabelled_share(self):
        return (self.labels != self.given).float().mean().item() if self.labels is not None else None

    def before_batch(self):
        super().before_batch()
        n = self.y.shape[0]
        # this epoch's sampler order, drawn by fastai in the main process
        order = self.dl._DataLoader__idxs
        idx = self.batch_idx = torch.as_tensor(order[self.iter*self.dl.bs:][:n], dtype=torch.long)
        # checked in the first epoch
        if self.epoch == 0 and (len(idx) != n or not torch.equal(self.given[idx], self.y.cpu())):
            raise RuntimeError("SCN could not match this batch to its training images; "
                               "it needs the DataLoader's own sampler")
        self.learn.yb = (self.labels[idx].to(self.y.device),)   # relabelled images train on their new label

    def after_loss(self):
        alpha, self.hook.stored = self.hook.stored[:, 0], None
        rr = rank_regularization(alpha.float(), self.beta, self.margin1)
        self.learn.loss_grad = self.learn.loss_grad + rr
        self.accumulate(self.learn.loss, rr)
        if self.relabel != 'none' and self.epoch + 1 >= self.relabel_epoch and not hasattr(self.learn, 'lr_finder'):
            labels = self.y.detach()
            allowed = None
            if self.relabel == 'low':                  # the low-importance group: all but the top ⌊beta·N⌋
                allowed = torch.ones_like(labels, dtype=torch.bool)
                allowed[alpha.detach().topk(int(len(alpha)*self.beta)).indices] = False
            new, _ = scn_relabel(F.softmax(self.pred.detach().float(), 1), labels, self.margin2, allowed)
            self.labels[self.batch_idx] = new.cpu()    # used from the next time these images are drawn

    def relabel_frame(self) -> pd.DataFrame:
        "The training items with their given label, current (possibly relabelled) label and whether it changed."
        vocab = list(self.dls.vocab)
        items = self.dls.train_ds.items
        items = (items.drop(columns=['is_valid', 'path'], errors='ignore').reset_index(drop=True)
                 if isinstance(items, pd.DataFrame) else pd.DataFrame(dict(item=list(map(str, items)))))
        return items.assign(given=[vocab[i] for i in self.given], scn_label=[vocab[i] for i in self.labels],
                            relabelled=(self.labels != self.given).numpy())

    def cleanup(self):
        if getattr(self, 'hook', None) is not None: self.hook.remove()
        self.hook = None
