"`eac_learner`: a fastai vision learner with a CAM-compatible head, local pretrained weights and a training method."
import inspect, os, tempfile
from functools import partial
from pathlib import Path
import torch
# these add fit_one_cycle, lr_find, to_fp16 and to_channelslast to Learner
import fastai.callback.schedule, fastai.callback.fp16, fastai.callback.channelslast  # noqa: F401
from fastai.losses import CrossEntropyLossFlat
from fastai.metrics import accuracy
from ..metrics import MeanClassAccuracy
from fastai.optimizer import OptimWrapper, Adam, SGD
from fastai.vision.learner import vision_learner
from fastai.callback.fp16 import MixedPrecision
from fastai.callback.hook import dummy_eval
from fastcore.basics import first
from .archs import ARCHS
from ..methods.cam import linear_head
from ..data.core import inference_dataloaders
from ..methods import METHODS, method_callback
from ..methods.base import AugmentCallback
from .weights import is_torchvision_weights, load_backbone_weights, torchvision_state_dict, torchvision_weights

__all__ = ['OPTIMIZERS', 'eac_learner', 'method_settings', 'wd_bn_bias_problem', 'export_learner']

OPTIMIZERS = {
    'adam': partial(OptimWrapper, opt=torch.optim.Adam),               # torch semantics: coupled L2 wd (the paper's)
    'sgd': partial(OptimWrapper, opt=partial(torch.optim.SGD, momentum=0.9)),
    'fastai_adam': Adam,                                               # decoupled wd, sqr_mom 0.99, eps 1e-5
    'fastai_sgd': SGD,
}
def wd_bn_bias_problem(opt:str, wd_bn_bias:bool) -> str|None:
    "Why `wd_bn_bias=False` cannot work with `opt`: fastai's OptimWrapper ignores its per-parameter `do_wd`."
    if not wd_bn_bias and not opt.startswith('fastai_'):
        return f"wd_bn_bias=false needs opt fastai_adam or fastai_sgd; torch's {opt} decays every parameter"

def method_settings(method:str, kwargs:dict) -> dict:
    """The keyword arguments in `kwargs` that `method`'s callback takes (augmentation and settings), removed from
    `kwargs`."""
    cls = METHODS.get(method, AugmentCallback)
    names = set(inspect.signature(cls).parameters) | set(cls.config.model_fields)
    return {k: kwargs.pop(k) for k in list(kwargs) if k in names}

def eac_learner(dls,
                arch:str='resnet18',                   # a name in `ARCHS`
                method='eac',                          # a name in `METHODS`, or a method callback
                # the body's start: a local checkpoint (torchvision layout, VGGFace2 .pkl), torchvision weights by
                # name ('imagenet', 'IMAGENET1K_V1', ...: torch's cache, downloaded once), None: random init
                weights=None,
                opt:str='adam', wd:float=1e-4,         # a name in `OPTIMIZERS`; weight decay
                wd_bn_bias:bool=True,                  # decay BatchNorm and bias too (False: fastai optimizers only)
                metrics=None, cbs=None,                # None: accuracy and `MeanClassAccuracy()`
                **kwargs):                             # method callback's args (e.g. `lam=5.`), then `vision_learner`'s
    """A `vision_learner` whose head is global average pooling → one Linear (so CAMs exist), body unfrozen, with
    `method`'s callback; SCN and RUL get their own heads (and RUL its parameter groups)."""
    if arch not in ARCHS: raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    if problem := wd_bn_bias_problem(opt, wd_bn_bias): raise ValueError(problem)
    if isinstance(method, str):
        method = method_callback(method, **method_settings(method, kwargs))
    learn = vision_learner(dls, ARCHS[arch], pretrained=False, concat_pool=False, lin_ftrs=[], first_bn=False, ps=0.,
                           init=None, loss_func=CrossEntropyLossFlat(), opt_func=OPTIMIZERS[opt], wd=wd,
                           wd_bn_bias=wd_bn_bias, cbs=[method, *(cbs or [])],
                           metrics=[accuracy, MeanClassAccuracy()] if metrics is None else metrics, **kwargs)
    if is_torchvision_weights(weights): weights = torchvision_state_dict(torchvision_weights(arch, weights))
    if weights is not None: load_backbone_weights(learn.model[0], ARCHS[arch](weights=None), weights)
    if hasattr(method, 'head'):
        lin, size = linear_head(learn.model), first(dls.valid)[0].shape[-2:]   # the image size the data gives
        fmap = dummy_eval(learn.model[0], tuple(size)).shape[-2:]
        learn.model[1] = method.head(lin.in_features, lin.out_features, tuple(fmap))
    if hasattr(method, 'splitter'): learn.splitter = method.splitter
    learn.unfreeze()
    return learn

def export_learner(learn, path) -> Path:
    """`learn.export` to `path` (atomically) without its training callbacks (method, mixed precision), with a DataBlock
    pipeline that takes image paths: `load_learner(path).predict('face.jpg')` preprocesses as in training, on any
    device."""
    path = Path(path)
    training = [cb for cb in learn.cbs if isinstance(cb, (AugmentCallback, MixedPrecision))]
    dls, tmp = learn.dls, Path(tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.')[1])
    learn.remove_cbs(training)
    try:
        learn.dls = inference_dataloaders(dls)
        learn.export(tmp.resolve())
        os.replace(tmp, path)
    finally:
        learn.dls = dls
        learn.add_cbs(training)
        tmp.unlink(missing_ok=True)
    return path
