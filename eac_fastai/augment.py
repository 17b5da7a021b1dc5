"""Batch augmentations of the official EAC/SCN/RUL code, done on normalised batches, per image.

`random_erasing` follows torchvision's `RandomErasing` (one rectangle, area fraction drawn from
`scale`, log-uniform aspect ratio from `ratio`, up to 10 attempts, `p` decided per image), applied
after `Normalize` like the official code. fastai's own `RandomErasing` differs (one box for the whole
batch, Gaussian fill, other area law), so it is not used.
`gaussian_noise` is the official "basic aug": N(0, var) noise on the 0-255 image, clipped and
truncated back to uint8 values, with probability `p` per image."""
import math
from dataclasses import dataclass
import torch
from torch import Tensor

__all__ = ['random_erasing', 'gaussian_noise', 'Erasing', 'GaussianNoise']

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
    "Add N(0, `var`) noise on the 0-255 scale to each image with probability `p`, clip to [0, 255], truncate to integers."
    if mean is None: mean, std = x.new_zeros(1), x.new_ones(1)
    pix = (x*std + mean) * 255
    noisy = (pix + torch.randn_like(pix)*math.sqrt(var)).clamp(0, 255).floor()
    do = (torch.rand(x.shape[0], device=x.device) < p).view(-1, *[1]*(x.ndim-1))
    return torch.where(do, (noisy/255 - mean)/std, x)

@dataclass
class Erasing:
    "Settings of `random_erasing`; defaults are the official EAC code's (torchvision with scale 0.02-0.25)."
    p: float = 0.5
    scale: tuple = (0.02, 0.25)
    ratio: tuple = (0.3, 3.3)
    value: float|tuple|str = 0.
    def __call__(self, x:Tensor) -> Tensor: return random_erasing(x, self.p, self.scale, self.ratio, self.value)

@dataclass
class GaussianNoise:
    "Settings of `gaussian_noise`; defaults are the official code's (p 0.5, variance 30)."
    p: float = 0.5
    var: float = 30.
    def __call__(self, x:Tensor, stats=None) -> Tensor: return gaussian_noise(x, self.p, self.var, *(stats or (None, None)))
