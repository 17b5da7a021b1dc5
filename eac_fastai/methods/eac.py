"""Erasing Attention Consistency (Zhang et al., ECCV 2022) as in its official code (EAC_SPEC): CE on the original view
only (the imbalanced framework), per-image random erasing, and `lam` × the MSE between the original's CAMs and the
flipped view's, flipped back."""
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Literal
import torch
from torch import nn
from pydantic import Field
from .cam import CONSISTENCIES, CAMConsistencyCallback, RampedSection, consistency_field, ramp_field

__all__ = ['per_view_batchnorm', 'EACSection', 'EACCallback']

def _chunked_batchnorm(bn, views:int, x):
    "`bn`'s own forward on each of `views` chunks of the batch in turn (training), or on the whole batch (eval)."
    forward = type(bn).forward
    return torch.cat([forward(bn, c) for c in x.chunk(views)]) if bn.training else forward(bn, x)

@contextmanager
def per_view_batchnorm(model:nn.Module, views:int=2):
    """Inside, every BatchNorm of `model` normalises each of `views` equal parts of its batch with that part's
    statistics and updates its running statistics once per part, in order: one forward over the concatenated views
    computes what `views` separate forward calls would (per-view BatchNorm, as the official two-call EAC step has)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns: bn.forward = partial(_chunked_batchnorm, bn, views)
    try: yield
    finally:
        for bn in bns: vars(bn).pop('forward', None)

class EACSection(RampedSection):
    "EAC (method: eac)."
    lam: float = Field(5., ge=0, description="weight of the CAM flip-consistency loss")
    mode: Literal['noisy', 'clean'] = Field('noisy', description="noisy: views erased independently; "
                                            "clean: exact mirror")
    one_forward: bool = Field(False, description="both views in one forward pass, BatchNorm statistics still per view "
                              "(speed)")
    ramp: float = ramp_field()
    consistency: Literal[CONSISTENCIES] = consistency_field()

class EACCallback(CAMConsistencyCallback):
    """Erasing Attention Consistency: CE on the original view only, plus `lam` × MSE of its CAMs and the flipped view's,
    flipped back. Settings: the fields of `EACSection` (`lam=5.`, `mode='noisy'`, `one_forward`, `ramp`,
    `consistency`)."""
    config = EACSection
    def before_batch(self):
        x = self.crop_batch(self.x)
        if self.mode == 'noisy': view, flipped = self.augment(x), self.augment(x.flip(-1), basic=False)
        else: view = self.augment(x); flipped = view.flip(-1)
        # one pass over [view; flipped], each half with its own BN statistics
        if self.one_forward:
            self.learn.xb, self.x_flip = (torch.cat([view, flipped]), *self.xb[1:]), None
            self.per_view = ExitStack(); self.per_view.enter_context(per_view_batchnorm(self.body, 2))
        else: self.learn.xb, self.x_flip = (view, *self.xb[1:]), flipped

    def after_pred(self):
        features, self.hook.stored = self.hook.stored, None   # hold no graph on the module (deepcopy, memory)
        if self.one_forward:
            self.per_view.close(); self.per_view = None
            features, flipped = features.chunk(2)
            self.learn.pred = self.pred[:len(features)]        # the flipped view's logits are not used (imbalanced)
        else: flipped, self.hook.stored = self.body(self.x_flip), None   # its own forward call (own BN statistics)
        self.consistency_loss = self.flip_consistency(self.cams(features), self.cams(flipped))
