"Class activation maps (CAMs) of a GAP → Linear head, and EAC's flip-consistency loss."
import torch, torch.nn.functional as F
from torch import nn, Tensor

__all__ = ['class_activation_maps', 'flip_consistency', 'linear_head']

def class_activation_maps(features:Tensor, weight:Tensor) -> Tensor:
    "CAMs of every class: `M[n,k,h,w] = Σ_c weight[k,c] · features[n,c,h,w]` (no bias, no ReLU, no normalisation)."
    return torch.einsum('nchw,kc->nkhw', features, weight.to(features.dtype))

def flip_consistency(cams:Tensor, cams_of_flipped:Tensor) -> Tensor:
    "Mean squared error between `cams` and the flipped image's CAMs flipped back, over batch, classes, height, width."
    return F.mse_loss(cams.float(), cams_of_flipped.flip(-1).float())

def linear_head(model:nn.Module) -> nn.Linear:
    "The last `nn.Linear` of `model`, whose weight turns body features into class scores."
    lins = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not lins: raise ValueError("the model has no nn.Linear layer to build class activation maps from")
    return lins[-1]
