"""Batch augmentations of the official EAC/SCN/RUL code, done on normalised batches, per image.

`random_erasing` follows torchvision's `RandomErasing` (one rectangle, area fraction drawn from
`scale`, log-uniform aspect ratio from `ratio`, up to 10 attempts, `p` decided per image), applied
after `Normalize` like the official code. fastai's own `RandomErasing` differs (one box for the whole
batch, Gaussian fill, other area law), so it is not used.
`gaussian_noise` is the official Gaussian "basic aug": N(0, var) noise on the 0-255 image, clipped and
truncated back to uint8 values. `BasicAug` is the official basic augmentation: with probability `p` per image,
one op drawn uniformly from `ops` (EAC: noise only; SCN and RUL: a horizontal flip or noise).
`random_crop` is the CIFAR-style crop (zero padding, then a random crop of the original size). `random_flip` is a
horizontal flip with probability `p` per image, drawn apart from the basic aug: the supplementary's fair baseline
(§3)."""
import math
from typing import Literal
import torch
from pydantic import Field, field_validator
from torch import Tensor
from ..config import Section

__all__ = ['random_erasing', 'gaussian_noise', 'random_crop', 'random_flip', 'basic_aug', 'BASIC_OPS', 'Erasing',
           'BasicAug', 'Crop', 'Flip']

def random_erasing(x:Tensor, p:float=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value:float|tuple|str=0.,
                   attempts:int=10) -> Tensor:
    "Erase one random rectangle in each image of `x` (N,C,H,W) with probability `p`, torchvision semantics."
    n, c, H, W = x.shape
    dev = x.device
    area = torch.empty(n, attempts, device=dev).uniform_(*scale) * (H*W)
    logr = (math.log(ratio[0]), math.log(ratio[1]))
    aspect = torch.exp(torch.empty(n, attempts, device=dev).uniform_(*logr))
    hs, ws = torch.sqrt(area*aspect).round().long(), torch.sqrt(area/aspect).round().long()
    ok = (hs < H) & (ws < W)
    first = ok.int().argmax(1, keepdim=True)             # first attempt that fits, as torchvision takes it
    h, w = hs.gather(1, first)[:, 0], ws.gather(1, first)[:, 0]
    do = (torch.rand(n, device=dev) < p) & ok.any(1)
    top = (torch.rand(n, device=dev) * (H - h + 1)).floor().long()
    left = (torch.rand(n, device=dev) * (W - w + 1)).floor().long()
    rows, cols = torch.arange(H, device=dev)[None, :, None], torch.arange(W, device=dev)[None, None, :]
    box = ((rows >= top[:, None, None]) & (rows < (top + h)[:, None, None]) &
           (cols >= left[:, None, None]) & (cols < (left + w)[:, None, None]) & do[:, None, None])
    if value == 'random': fill = torch.randn_like(x)
    else: fill = torch.as_tensor(value, dtype=x.dtype, device=dev).reshape(-1, 1, 1).expand(c, 1, 1)
    return torch.where(box[:, None], fill, x)

def gaussian_noise(x:Tensor, p:float=0.5, var:float=30., mean:Tensor|None=None, std:Tensor|None=None) -> Tensor:
    """Add N(0, `var`) noise on the 0-255 scale to each image with probability `p`, clip to [0, 255], truncate to
    integers."""
    if mean is None: mean, std = x.new_zeros(1), x.new_ones(1)
    pix = (x*std + mean) * 255
    noisy = (pix + torch.randn_like(pix)*math.sqrt(var)).clamp(0, 255).floor()
    do = (torch.rand(x.shape[0], device=x.device) < p).view(-1, *[1]*(x.ndim-1))
    return torch.where(do, (noisy/255 - mean)/std, x)

def random_crop(x:Tensor, padding:int, fill:Tensor|float=0.) -> Tensor:
    "Pad each image of `x` by `padding` pixels of `fill` on every side and crop it back to its size at a random offset."
    n, c, H, W = x.shape
    padded = x.new_empty(n, c, H + 2*padding, W + 2*padding).copy_(
        torch.as_tensor(fill, dtype=x.dtype).reshape(-1, 1, 1).expand(c, 1, 1)[None])
    padded[..., padding:padding+H, padding:padding+W] = x
    top, left = (torch.randint(0, 2*padding+1, (2, n), device=x.device))
    rows = (top[:, None] + torch.arange(H, device=x.device))[:, None, :, None].expand(n, c, H, W + 2*padding)
    out = padded.gather(2, rows)
    cols = (left[:, None] + torch.arange(W, device=x.device))[:, None, None, :].expand(n, c, H, W)
    return out.gather(3, cols)

def random_flip(x:Tensor, p:float=0.5) -> Tensor:
    "Mirror each image of `x` left-right with probability `p`."
    return torch.where((torch.rand(x.shape[0], device=x.device) < p).view(-1, *[1]*(x.ndim-1)), x.flip(-1), x)

BASIC_OPS = ('noise', 'flip')

def basic_aug(x:Tensor, p:float=0.5, ops=('noise',), var:float=30., mean:Tensor|None=None,
              std:Tensor|None=None) -> Tensor:
    """With probability `p` per image, apply one op drawn uniformly from `ops` ('noise': `gaussian_noise`, 'flip':
    horizontal flip)."""
    if not ops: return x
    n, dev = x.shape[0], x.device
    do = torch.rand(n, device=dev) < p
    pick = torch.randint(0, len(ops), (n,), device=dev)
    for i, op in enumerate(ops):
        sel = (do & (pick == i)).view(-1, *[1]*(x.ndim-1))
        if op == 'noise': x = torch.where(sel, gaussian_noise(x, 1., var, mean, std), x)
        elif op == 'flip': x = torch.where(sel, x.flip(-1), x)
        else: raise ValueError(f"unknown basic augmentation {op!r}; choose from {', '.join(BASIC_OPS)}")
    return x

class Erasing(Section):
    "Settings of `random_erasing` (a recipe's `augment.erase`); defaults are the official EAC code's."
    p: float = Field(0.5, ge=0, le=1, description="probability per image")
    scale: tuple[float, float] = Field((0.02, 0.25),
                                       description="erased area ÷ image area, drawn uniformly in [low, high]")
    ratio: tuple[float, float] = Field((0.3, 3.3), description="aspect ratio of the erased box, drawn log-uniformly")
    value: float|tuple[float, float, float]|Literal['random'] = Field(
        0., description="fill value after Normalize: one number, a per-channel list of three, or random (normal noise)")

    @field_validator('scale')
    @classmethod
    def _scale(cls, v):
        if not 0 < v[0] <= v[1] <= 1: raise ValueError("needs 0 < low <= high <= 1")
        return v

    @field_validator('ratio')
    @classmethod
    def _ratio(cls, v):
        if not 0 < v[0] <= v[1]: raise ValueError("needs 0 < low <= high")
        return v

    def __call__(self, x:Tensor) -> Tensor: return random_erasing(x, self.p, self.scale, self.ratio, self.value)

class BasicAug(Section):
    """Settings of `basic_aug` (a recipe's `augment.basic`); defaults are the official EAC code's: noise of variance 30,
    p 0.5."""
    p: float = Field(0.5, ge=0, le=1, description="probability per image (EAC: original view only)")
    ops: list[Literal[BASIC_OPS]]|None = Field(None, description="drawn uniformly when applied; null: the method's "
                                               "official ops (scn, rul: [flip, noise]; the others: [noise])")
    var: float = Field(30., ge=0, description="Gaussian noise variance on the 0-255 scale")
    def __call__(self, x:Tensor, stats=None) -> Tensor:
        ops = ('noise',) if self.ops is None else self.ops     # None: the EAC code's own op
        return basic_aug(x, self.p, ops, self.var, *(stats or (None, None)))

class Crop(Section):
    "Settings of `random_crop` (a recipe's `augment.crop`): black padding (in the normalised space of `stats`)."
    padding: int = Field(4, ge=1, description="black pixels added on each side before the random crop back to img_size")
    def __call__(self, x:Tensor, stats=None) -> Tensor:
        fill = (-stats[0]/stats[1]).flatten() if stats else 0.
        return random_crop(x, self.padding, fill)

class Flip(Section):
    "Settings of `random_flip` (a recipe's `augment.flip`); the supplementary gives the baseline and SCN p 0.5."
    p: float = Field(0.5, ge=0, le=1, description="probability per image")
    def __call__(self, x:Tensor) -> Tensor: return random_flip(x, self.p)
