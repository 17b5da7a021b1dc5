"Class activation maps (CAMs) of a GAP → Linear head, and EAC's flip-consistency loss."
import torch, torch.nn.functional as F
from torch import nn, Tensor

__all__ = ['CONSISTENCIES', 'check_consistency', 'class_activation_maps', 'flip_consistency', 'linear_head']

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
