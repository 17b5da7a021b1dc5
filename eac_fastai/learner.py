"`eac_learner`: a fastai vision learner with a CAM-compatible head, local pretrained weights and a training method."
from functools import partial
import torch, torchvision
import fastai.callback.schedule, fastai.callback.fp16  # noqa: F401  Learner.fit_one_cycle, lr_find, to_fp16
from fastai.losses import CrossEntropyLossFlat
from fastai.metrics import accuracy
from fastai.optimizer import OptimWrapper, Adam, SGD
from fastai.vision.learner import vision_learner
from .augment import Erasing, GaussianNoise
from .callbacks import AugmentCallback, EACCallback
from .weights import load_backbone_weights

__all__ = ['ARCHS', 'METHODS', 'OPTIMIZERS', 'eac_learner', 'method_callbacks', 'wd_bn_bias_problem']

ARCHS = {n: getattr(torchvision.models, n) for n in ('resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152')}
OPTIMIZERS = {
    'adam': partial(OptimWrapper, opt=torch.optim.Adam),               # torch semantics: coupled L2 wd (the paper's)
    'sgd': partial(OptimWrapper, opt=partial(torch.optim.SGD, momentum=0.9)),
    'fastai_adam': Adam,                                               # decoupled wd, sqr_mom 0.99, eps 1e-5
    'fastai_sgd': SGD,
}
METHODS = ('baseline', 'eac')

def wd_bn_bias_problem(opt:str, wd_bn_bias:bool) -> str|None:
    "Why `wd_bn_bias=False` cannot work with `opt`: fastai's OptimWrapper ignores its per-parameter `do_wd`."
    if not wd_bn_bias and not opt.startswith('fastai_'):
        return f"wd_bn_bias=false needs opt fastai_adam or fastai_sgd; torch's {opt} decays every parameter"

def method_callbacks(method:str='eac', lam:float=5., mode:str='noisy', erase:Erasing|None=Erasing(),
                     noise:GaussianNoise|None=GaussianNoise()) -> list:
    "The training callbacks of `method`: 'baseline' (CE with the same augmentation) or 'eac'."
    if method == 'baseline': return [AugmentCallback(erase, noise)]
    if method == 'eac': return [EACCallback(lam, mode, erase, noise)]
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")

def eac_learner(dls,
                arch:str='resnet18',                   # a name in `ARCHS`
                method:str='eac',                      # 'eac' or 'baseline'
                weights=None,                          # local torchvision-layout checkpoint for the body (None: random init)
                lam:float=5., mode:str='noisy',        # EAC consistency weight and view pairing
                erase:Erasing|None=Erasing(), noise:GaussianNoise|None=GaussianNoise(),
                opt:str='adam', wd:float=1e-4,         # a name in `OPTIMIZERS`; weight decay
                wd_bn_bias:bool=True,                  # decay BatchNorm and bias too (False: fastai optimizers only)
                metrics=accuracy, cbs=None, **kwargs):
    "A `vision_learner` whose head is global average pooling → one Linear (so CAMs exist), body unfrozen, with `method`'s callbacks."
    if arch not in ARCHS: raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    if problem := wd_bn_bias_problem(opt, wd_bn_bias): raise ValueError(problem)
    learn = vision_learner(dls, ARCHS[arch], pretrained=False, concat_pool=False, lin_ftrs=[], first_bn=False, ps=0.,
                           init=None, loss_func=CrossEntropyLossFlat(), opt_func=OPTIMIZERS[opt], wd=wd,
                           wd_bn_bias=wd_bn_bias, metrics=metrics,
                           cbs=method_callbacks(method, lam, mode, erase, noise) + list(cbs or []), **kwargs)
    if weights is not None: load_backbone_weights(learn.model[0], ARCHS[arch](weights=None), weights)
    learn.unfreeze()
    return learn
