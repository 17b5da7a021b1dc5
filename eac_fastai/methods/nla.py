"""Navigating Label Ambiguity (Lee et al., AAAI 2025) as in its official code (jungyu0413/NLA: src/loss.py,
src/train.py).

Each image goes through the network twice, as it is and as its exact mirror (the same augmentation, erased box
included), in two forward calls. The loss is `lam_ce`·CE + `lam_naw`·mean(w·CE) on the original view, plus
`lam_jsd` × the code's Jensen-Shannon term between the two views' logits, summed over the batch's images. An
image's weight w (Noise-Aware adaptive Weighting) is a 2-D Gaussian density at (p of its given label, p of the
most likely other class): one Gaussian when the given label is the top prediction, whose correlation grows from 0 to
negative over the epochs, another when it is not. The weight is not detached: its gradient flows, as in the
official code."""
import math
import torch, torch.nn.functional as F
from pydantic import Field
from torch import Tensor
from ..config import Section
from .base import MethodCallback

__all__ = ['gaussian_density', 'naw_covariance', 'naw_weights', 'flip_jsd', 'NLASection', 'NLACallback']

def gaussian_density(points:Tensor, mean:Tensor, cov:Tensor) -> Tensor:
    "Density of N(`mean`, `cov`) at each row (x, y) of `points` (N,2): exp(−½ dᵀΣ⁻¹d) / (2π √det Σ)."
    (a, b), (_, d) = cov.tolist()
    det = a*d - b*b
    dx, dy = (points - mean).unbind(1)
    mahalanobis = (d*dx*dx - 2*b*dx*dy + a*dy*dy)/det     # dᵀΣ⁻¹d with Σ⁻¹ = [[d, −b], [−b, a]] / det
    return torch.exp(-0.5*mahalanobis)/(2*math.pi*math.sqrt(det))

def naw_covariance(std:float, ratio:float, sign:int, scale:float=1.) -> Tensor:
    """The official covariance [[v, c], [c, v]] with v = std² + (std/ratio)² and c = `scale`·`sign`·(std² −
    (std/ratio)²): at `scale` 1, standard deviations `std`·√2 along one diagonal and `std`/`ratio`·√2 along the
    other (sign −1: long along p_label + p_other = const)."""
    major, minor = std**2, (std/ratio)**2
    c = scale*sign*(major - minor)
    return torch.tensor([[major + minor, c], [c, major + minor]])

def naw_weights(logits:Tensor, labels:Tensor, top_mean, top_cov:Tensor, other_mean, other_cov:Tensor,
                top_scale:float=1.) -> Tensor:
    """Each image's NAW weight: with p the softmax of `logits`, the density at (p[label], max over the other classes of
    p) of N(`top_mean`, `top_cov`) × `top_scale` when the label holds the top probability, else of N(`other_mean`,
    `other_cov`)."""
    probs = logits.float().softmax(1)
    p_label = probs.gather(1, labels[:, None])[:, 0]
    p_other = probs.masked_fill(F.one_hot(labels, probs.shape[1]).bool(), -1.).max(1).values
    points = torch.stack([p_label, p_other], 1)
    top = p_label >= probs.max(1).values
    t = top_scale*gaussian_density(points, points.new_tensor(top_mean), top_cov)
    return torch.where(top, t, gaussian_density(points, points.new_tensor(other_mean), other_cov))

def flip_jsd(logits:Tensor, logits_of_flipped:Tensor) -> Tensor:
    """Per image, the official code's Jensen-Shannon term: ½·(KL(q‖p) + KL(q‖p')), p and p' the softmax of the two
    views' logits and q the softmax of their mean logits (not the mean of the probabilities)."""
    a, b = logits.float(), logits_of_flipped.float()
    log_q = ((a + b)/2).log_softmax(1)
    kl = lambda z: (log_q.exp()*(log_q - z.log_softmax(1))).sum(1)
    return (kl(a) + kl(b))/2

class NLASection(Section):
    "Navigating Label Ambiguity, AAAI'25 (method: nla); defaults are the official main_rafdb.py's."
    lam_ce: float = Field(0.5, ge=0, description="weight of the plain CE (official lam_a)")
    lam_naw: float = Field(0.5, ge=0, description="weight of the NAW-weighted CE (official lam_b)")
    lam_jsd: float = Field(0.5, ge=0, description="weight of the flip Jensen-Shannon term, summed over the batch's "
                           "images (official lam_c): its pull against CE grows with data.bs")
    top_mean: tuple[float, float] = Field((0.5, 0.5), description="(p_label, p_other) centre of the Gaussian of "
                                          "images whose label is the top prediction (official mu_x_t, mu_y_t)")
    top_std: float = Field(0.8, gt=0, description="its long-axis scale (official t_std_major)")
    top_ratio: float = Field(2., gt=0, description="long ÷ short axis scale (official t_std_ratio)")
    top_scale: float = Field(1., ge=0, description="factor on its density (official t_lambda)")
    other_mean: tuple[float, float] = Field((0.30, 0.15), description="centre of the Gaussian of the other images "
                                            "(official mu_x_f, mu_y_f)")
    other_std: float = Field(0.91, gt=0, description="its long-axis scale (official f_std_major)")
    other_ratio: float = Field(6., gt=0, description="long ÷ short axis scale (official f_std_ratio)")
    slope: float = Field(-15., lt=0, description="the top Gaussian's correlation is 1 − exp(slope·epoch/epochs) of "
                         "its full value in each epoch (0-based)")
    anneal: bool = Field(True, description="false: the full correlation from the first epoch (official sch_bool)")

class NLACallback(MethodCallback):
    """NLA: CE and NAW-weighted CE on the original view, plus the Jensen-Shannon term between it and its exact mirror
    (a second forward call, its own BatchNorm statistics). Settings: the fields of `NLASection`; the official
    augmentation is Gaussian noise, a flip with p 0.5, then erasing (`recipes/methods/nla.yaml`)."""
    terms, config = ('train_ce', 'train_naw', 'train_jsd'), NLASection
    _stateattrs = ('x_flip', 'flipped_pred', 'sums', 'term_metrics', 'net')

    def setup(self): self.net = getattr(self.learn.model, 'module', self.learn.model)   # the mirror's own forward call
    def cleanup(self): self.net = self.x_flip = self.flipped_pred = None

    def correlation(self) -> float:
        "The share of the top Gaussian's correlation in this epoch."
        return 1 - math.exp(self.slope*self.epoch/self.n_epoch) if self.anneal else 1.

    def covariances(self) -> tuple[Tensor, Tensor]:
        "This epoch's covariances of the top and other Gaussians."
        return (naw_covariance(self.top_std, self.top_ratio, -1, self.correlation()),
                naw_covariance(self.other_std, self.other_ratio, 1))

    def before_batch(self):
        view = self.augment(self.crop_batch(self.x))
        # a plain tensor: a compiled model recompiles for fastai's TensorImage and fails there
        self.learn.xb, self.x_flip = (view, *self.xb[1:]), view.flip(-1).as_subclass(Tensor)

    def after_pred(self): self.flipped_pred, self.x_flip = self.net(self.x_flip), None   # (under autocast, if on)

    def after_loss(self):
        plain = lambda t: t.as_subclass(Tensor)           # fastai's tensor types do not dispatch in pairs
        pred, y, flipped, self.flipped_pred = plain(self.pred), plain(self.y), plain(self.flipped_pred), None
        ce = F.cross_entropy(pred.float(), y, reduction='none')
        top_cov, other_cov = self.covariances()
        naw = (ce*naw_weights(pred, y, self.top_mean, top_cov, self.other_mean, other_cov, self.top_scale)).mean()
        jsd = flip_jsd(pred, flipped).sum()
        self.learn.loss_grad = self.lam_ce*ce.mean() + self.lam_naw*naw + self.lam_jsd*jsd
        self.accumulate(ce.mean(), naw, jsd/len(ce))
