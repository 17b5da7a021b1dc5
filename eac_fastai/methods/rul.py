"""Relative Uncertainty Learning (Zhang et al., NeurIPS 2021) as in its official code (EAC_SPEC §6.3).

Two branches on the body's feature map give a mean μ and a log-variance per image. In training each image is
paired with a random partner; their μ are mixed with weights `u / (u + u_partner)` (u = mean of exp(log-var)),
classified, and the add-up loss `0.5·CE(·, y) + 0.5·CE(·, y_partner)` trains everything. At test time the
classifier sees μ alone. The classifier trains at `fc_lr_mult` × the learning rate (officially 2e-3 vs 2e-4).

`relabel` (off by default, as the official code has none) adds the relabelling RUL's author advises ("Do not forget to
add RELABEL module to RUL as it is vital", RUL issue #4) with SCN's rule: from `relabel_epoch` on, an image whose top
probability under its own mean feature μ (unmixed; computed in the training step, so with its dropout and batch
statistics) beats its current label's by more than `relabel_margin` takes the predicted label; both labels of the
add-up loss are the current ones."""
import torch, torch.nn.functional as F
from torch import nn, Tensor
from fastai.callback.hook import hook_output
from fastai.torch_core import params
from pydantic import Field
from ..config import Section
from .relabel import RelabelCallback
from ..errors import UserError

__all__ = ['RULHead', 'uncertainty_mix', 'add_up_loss', 'rul_splitter', 'RULSection', 'RULCallback']

def _branch(nf:int, fmap, dim:int, drop:float) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(nf, eps=2e-5, affine=False), nn.Dropout(drop),
                         nn.Flatten(),   # any memory format
                         nn.Linear(nf*fmap[0]*fmap[1], dim), nn.BatchNorm1d(dim, eps=2e-5))

def uncertainty_mix(mu:Tensor, log_var:Tensor, perm:Tensor) -> Tensor:
    "`a·μ + (1−a)·μ[perm]` with `a = u / (u + u[perm])`, `u` the mean over features of `exp(log_var)`."
    u = log_var.exp().mean(1, keepdim=True)
    a = u / (u + u[perm])
    return a*mu + (1 - a)*mu[perm]

def add_up_loss(logits:Tensor, y:Tensor, perm:Tensor) -> Tensor:
    "RUL's add-up loss: `0.5·CE(logits, y) + 0.5·CE(logits, y[perm])`."
    return 0.5*F.cross_entropy(logits, y) + 0.5*F.cross_entropy(logits, y[perm])

class RULHead(nn.Module):
    "μ and log-variance branches (BN2d → dropout → flatten → Linear → BN1d) and the classifier on (mixed) μ."
    def __init__(self, nf:int, n_out:int, fmap=(7, 7), dim:int=64, drop:float=0.4):
        super().__init__()
        self.mu, self.log_var = _branch(nf, fmap, dim, drop), _branch(nf, fmap, dim, drop)
        self.fc = nn.Linear(dim, n_out)
        self.perm = None
    def forward(self, x):
        mu = self.mu(x)
        if not self.training: return self.fc(mu)
        self.perm = torch.randperm(x.shape[0], device=x.device)   # the add-up loss needs the pairing
        return self.fc(uncertainty_mix(mu, self.log_var(x), self.perm))

def rul_splitter(model) -> list:
    "Two parameter groups: body with the μ and log-variance branches, then the classifier (its own learning rate)."
    head = model[1]
    return [params(model[0]) + params(head.mu) + params(head.log_var), params(head.fc)]

class RULSection(Section):
    "Relative Uncertainty Learning, NeurIPS'21 (method: rul)."
    dim: int = Field(64, ge=1, description="feature dimension of the mean and log-variance branches")
    drop: float = Field(0.4, ge=0, lt=1, description="dropout in both branches")
    fc_lr_mult: float = Field(10., gt=0, description="classifier learning rate ÷ train.lr (officially 2e-3 / 2e-4)")
    relabel: bool = Field(False, description="relabel doubtful images with SCN's rule, as RUL's author advises (RUL "
                          "issue #4); the official code has none")
    relabel_epoch: int = Field(10, ge=1, description="with relabel: first epoch (1-based) that relabels (SCN's 10)")
    relabel_margin: float = Field(0.2, ge=0, description="with relabel: top probability − the label's above which "
                                  "the image takes the predicted label (SCN's margin2)")

class RULCallback(RelabelCallback):
    """RUL: uncertainty-weighted feature mixing with a random partner and the add-up loss; the classifier at
    `fc_lr_mult` × lr; with `relabel`, SCN's relabelling on the unmixed prediction. Settings: the fields of
    `RULSection`; its basic aug officially flips or adds noise."""
    config, basic_ops = RULSection, ('flip', 'noise')
    _stateattrs = ('mu_hook', 'sums', 'term_metrics', 'batch_idx', 'rul_head')
    relabels = property(lambda self: self.relabel)

    def head(self, nf:int, n_out:int, fmap) -> nn.Module: return RULHead(nf, n_out, fmap, self.dim, self.drop)
    splitter = staticmethod(rul_splitter)

    def check_data(self, dls):
        "A `UserError` when the training loader would end with a batch of one image, which BatchNorm1d cannot train on."
        dl = dls.train
        if not dl.drop_last and dl.bs and dl.n % dl.bs == 1:
            raise UserError(f"method rul: {dl.n} training images in batches of {dl.bs} leave a last batch of one "
                            "image, which RUL's BatchNorm cannot train on; set data.drop_last=true or change data.bs")

    def setup(self):
        model = getattr(self.learn.model, 'module', self.learn.model)
        if not isinstance(model[1], RULHead):
            raise ValueError("RULCallback needs a model whose head is a RULHead (eac_learner(method='rul') builds it)")
        self.check_data(self.dls)
        self.rul_head = model[1]
        if self.relabel: self.mu_hook = hook_output(self.rul_head.mu)   # detached: relabelling needs no gradient
        super().setup()

    def before_step(self):
        """The classifier's group steps at `fc_lr_mult` × the others' rate, whatever schedule set the rates (fit,
        fit_one_cycle, lr_find)."""
        self.schedule_lr = float(self.opt.hypers[0]['lr'])
        self.opt.set_hyper('lr', [self.schedule_lr, self.schedule_lr*self.fc_lr_mult])

    def after_step(self):
        """Every group back at the schedule's rate: fastai's Recorder logs the last group's, which lr_find plots and
        suggests from."""
        self.opt.set_hyper('lr', self.schedule_lr)

    def after_loss(self):
        perm, self.rul_head.perm = self.rul_head.perm, None
        plain = lambda t: t.as_subclass(Tensor)           # fastai's tensor types do not dispatch cross_entropy in pairs
        self.learn.loss_grad = add_up_loss(plain(self.pred), plain(self.y), perm)
        self.learn.loss = self.learn.loss_grad.detach().clone()
        if self.relabel:
            mu, self.mu_hook.stored = self.mu_hook.stored, None
            with torch.no_grad(): probs = F.softmax(self.rul_head.fc(mu).float(), 1)
            self.relabel_batch(probs, self.relabel_margin)

    def cleanup(self):
        if getattr(self, 'mu_hook', None) is not None: self.mu_hook.remove()
        self.rul_head = self.mu_hook = None
