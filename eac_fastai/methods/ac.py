"""Attention Consistency (Guo et al., CVPR 2019) as in its official code: the image and its exact mirror in one forward
pass, CE on both, plus `lam` × the flip consistency of their CAMs."""
from typing import Literal
import torch
from pydantic import Field
from ..data.augment import BasicAug, Crop, Erasing
from .cam import CONSISTENCIES, CAMConsistencyCallback, RampedSection, consistency_field, ramp_field

__all__ = ['ACSection', 'ACCallback']

class ACSection(RampedSection):
    "Attention Consistency, Guo et al. CVPR'19 (method: ac)."
    lam: float = Field(1., ge=0, description="weight of the CAM flip-consistency loss (Guo et al.: 1)")
    ramp: float = ramp_field()
    consistency: Literal[CONSISTENCIES] = consistency_field()

class ACCallback(CAMConsistencyCallback):
    """Attention Consistency: the original and its exact mirror in one forward pass (shared BatchNorm statistics, as the
    official code concatenates them), CE on both (mean over the 2N images), plus `lam` × flip consistency. Settings: the
    fields of `ACSection`."""
    config = ACSection
    labels_per_image = 2                               # the image's and its mirror's
    def __init__(self,
                 erase:Erasing|None=None,              # AC erases nothing; when set, the mirror keeps the erased box
                 basic:BasicAug|None=BasicAug(),       # basic aug before mirroring (None: off); no flip op
                 crop:Crop|None=None, **settings):
        super().__init__(erase, basic, crop, **settings)

    def before_batch(self):
        view = self.augment(self.crop_batch(self.x))
        self.learn.xb = (torch.cat([view, view.flip(-1)]), *self.xb[1:])
        self.learn.yb = tuple(torch.cat([y, y]) for y in self.yb)

    def after_pred(self):
        features, self.hook.stored = self.hook.stored, None
        cams, cams_flipped = self.cams(features).chunk(2)
        self.consistency_loss = self.flip_consistency(cams, cams_flipped)
