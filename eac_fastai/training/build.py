"From a recipe to objects: where its data is, its DataLoaders, its method callback and its learner."
import os, shutil, sys
from dataclasses import dataclass
from pathlib import Path
import torch
from fastai.metrics import AccumMetric, accuracy
from ..metrics import MeanClassAccuracy
from fastai.torch_core import num_distrib
from torch import nn
from ..data.core import label_dataloaders
from ..data.demo import DemoSpec, demo_dataset
from ..errors import UserError
from ..files import check_output_dir
from ..methods import method_callback
from ..models.learner import eac_learner
from ..models.weights import is_torchvision_weights
from ..settings import Settings, load_settings
from .distributed import is_distributed
from .schema import Recipe

__all__ = ['DataSource', 'resolve_data', 'recipe_dataloaders', 'recipe_method', 'recipe_learner', 'check_distributable',
           'last_batch_problem', 'compile_problem', 'compile_model', 'runtime_problem']

@dataclass
class DataSource:
    "Where a recipe's label CSV and images are."
    csv: Path
    root: Path

def resolve_data(recipe:Recipe, settings:Settings, create:bool=True) -> DataSource:
    "The recipe's CSV and image root, paths resolved through `settings`; the demo data is generated when `create`."
    d = recipe.data
    if d.demo is not None:
        if create: check_output_dir(settings.data, f"the data folder of {settings.source or 'the settings'}")
        csv = demo_dataset(settings.data, DemoSpec(**d.demo.model_dump()), create)
    else: csv = settings.data_path(d.csv)
    return DataSource(csv, settings.data_path(d.root) if d.root else csv.parent)

def _device(name:str) -> torch.device:
    if name == 'auto': return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name == 'cuda' and not torch.cuda.is_available():
        raise UserError("train.device=cuda but no CUDA device is available; use auto or cpu")
    return torch.device(name)

def recipe_dataloaders(recipe:Recipe, settings:Settings|None=None, device=None):
    "fastai DataLoaders for the recipe's data section."
    d, src = recipe.data, resolve_data(recipe, settings or load_settings())
    return label_dataloaders(src.csv, src.root, d.classes, d.valid_split, d.img_size, d.bs, d.num_workers, d.drop_last,
                             stats=(list(d.mean), list(d.std)), device=device or _device(recipe.train.device),
                             balanced=d.sampler == 'balanced', cache=d.cache)

def recipe_method(recipe:Recipe):
    "The training callback of the recipe's method, with its section's settings and the augmentation."
    a, section = recipe.augment, getattr(recipe, recipe.method, None)
    return method_callback(recipe.method, erase=a.erase, basic=a.basic, crop=a.crop,
                           **({'flip': a.flip} if a.flip else {}),
                           **(section.model_dump() if section is not None else {}))

def recipe_learner(recipe:Recipe, dls, settings:Settings|None=None, path='.'):
    "The recipe's `eac_learner` on `dls`, pretrained weights resolved through `settings`, precision applied."
    settings = settings or load_settings()
    m, t = recipe.model, recipe.train
    weights = m.weights if not m.weights or is_torchvision_weights(m.weights) else settings.weights_path(m.weights)
    learn = eac_learner(dls, m.arch, recipe_method(recipe), weights,
                        opt=t.opt, wd=t.wd, wd_bn_bias=t.wd_bn_bias, path=path,
                        # over the gathered predictions
                        metrics=[AccumMetric(accuracy, flatten=False) if is_distributed() else accuracy,
                                 MeanClassAccuracy()])
    if t.channels_last: learn.to_channelslast(use_amp=False)
    if t.precision != 'fp32':
        if dls.device.type != 'cuda':
            raise UserError(f"train.precision={t.precision} needs a CUDA device; use fp32 on {dls.device.type}")
        learn.to_fp16() if t.precision == 'fp16' else learn.to_bf16()
    return learn

def check_distributable(recipe:Recipe):
    "A `UserError` when `recipe` cannot train in several processes."
    section = getattr(recipe, recipe.method, None)
    if getattr(method_callback(recipe.method, **dict(section or {})), 'relabels', False):
        raise UserError(f"method {recipe.method} cannot train in several processes yet: its relabelled labels live in "
                        "each process; use one")

def last_batch_problem(learn, img_size:int) -> str|None:
    """Why the training loader's last batch cannot train when it holds one image: a BatchNorm layer of the model would
    see a single value per channel (a 1×1 feature map at `img_size`, or a BatchNorm1d). Found with one forward pass
    of a blank image in eval mode (no statistics or random numbers used)."""
    dl, model = learn.dls.train, learn.model
    n = -(-dl.n // num_distrib()) if num_distrib() > 1 else dl.n       # each process's share
    if dl.drop_last or not dl.bs or n % dl.bs != 1: return None
    single = []
    def hook(m, inp, out):
        if inp[0][0].numel() == inp[0].shape[1]: single.append(m)
    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    training = model.training
    try:
        model.eval()
        with torch.no_grad(): model(torch.zeros(1, 3, img_size, img_size, device=next(model.parameters()).device))
    finally:
        for h in hooks: h.remove()
        model.train(training)
    if not single: return None
    name = next(k for k, m in model.named_modules() if m is single[0])
    return (f"{n} training images in batches of {dl.bs} leave a last batch of one image, on which the model's "
            f"BatchNorm layer {name} would see a single value per channel (data.img_size={img_size}) and cannot train; "
            "set data.drop_last=true or change data.bs")

def compile_problem(backend:str, device:torch.device) -> str|None:
    """Why torch.compile's `backend` cannot run on `device` here (`train.compile`): found by compiling and running a
    tiny function with it (inductor on a CPU builds C++: a few seconds)."""
    from torch._dynamo import is_dynamo_supported
    fix = "or turn it off (train.compile: false)"
    if not is_dynamo_supported():
        return (f"train.compile: torch {torch.__version__} cannot compile on Python "
                f"{sys.version_info.major}.{sys.version_info.minor} here; {fix}")
    if backend == 'cudagraphs' and device.type != 'cuda': return f"train.compile: cudagraphs needs CUDA; {fix}"
    if backend == 'inductor' and device.type == 'cpu' and not shutil.which(cxx := os.environ.get('CXX', 'g++')):
        return (f"train.compile: the inductor backend generates C++ on the CPU and finds no compiler ({cxx}: not on "
                "PATH); install one (apt-get install g++) or set CXX, compile without generated code "
                f"(train.compile: aot_eager), {fix}")
    try: torch.compile(lambda x: x*2 + 1, backend=backend)(torch.ones(2, device=device))
    except Exception as e:
        why = next((l for l in str(e).splitlines() if l.strip()), type(e).__name__)[:300]
        return f"train.compile: the {backend} backend fails here ({type(e).__name__}: {why}); {fix}"

def compile_model(learn, compile):
    """`learn.model.compile` with the backend `compile` names (`True`: inductor); the state dict is unchanged. EAC's
    pass of the flipped view through the body alone stays uncompiled (compiling the body apart fails in dynamo)."""
    if compile: learn.model.compile(backend='inductor' if compile is True else compile)

def runtime_problem(recipe:Recipe, device:torch.device|None=None) -> str|None:
    """What stops `recipe` on this machine, found before any data is read: a tracker's missing package or login,
    torch.compile's backend."""
    from .loggers import logger_problem
    t = recipe.train
    if problem := logger_problem(t.loggers): return problem
    if t.compile: return compile_problem('inductor' if t.compile is True else t.compile, device or _device(t.device))
