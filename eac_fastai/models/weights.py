"""Pretrained backbone weights from a local file, loaded without executing pickled code.

Accepted layouts: a torchvision `state_dict` (e.g. `resnet18-f37072fd.pth`), a checkpoint dict with
the state under `'state_dict'` (RUL's `resnet18_msceleb.pth`), fastai's `learn.save` files (an eac-fastai
run's `models/best.pth`), keys optionally prefixed `module.` (DataParallel), and a plain pickle of names → numpy
arrays (VGGFace2's `resnet50_ft_weight.pkl`, for `resnet50_vggface2`). The format is read from the file's first bytes.
Or torchvision's ImageNet weights by name (`imagenet`, `IMAGENET1K_V1`, ...), through torchvision's weights API and
torch's cache (`$TORCH_HOME/hub/checkpoints`): downloaded once where there is a network, a file placed there offline.
The classifier is dropped: a new head is trained."""
import os, pickle, re
from pathlib import Path
from urllib.parse import urlparse
import numpy as np, torch, torchvision
from torch import nn
from ..errors import UserError
from ..safe_pickle import ALLOWED, safe_load

__all__ = ['IMAGENET', 'checkpoint_format', 'load_torch_file', 'read_state_dict', 'is_torchvision_weights',
           'torchvision_weights', 'weights_cache_file', 'torchvision_state_dict', 'load_backbone_weights']

# torch.save's zip; legacy magic number
_ZIP, _LEGACY = b'PK\x03\x04', b'\x8a\x0a' + (0x1950a86a20f9469cfc6c).to_bytes(10, 'little')
_TORCH_SUFFIXES = ('.pth', '.pt', '.tar')

def checkpoint_format(path) -> str:
    """'torch' (`torch.save`'s zip or legacy file), 'pickle' (any other pickle) or 'unknown', from the first bytes of
    `path`."""
    with open(path, 'rb') as f: head = f.read(16)
    if head.startswith(_ZIP) or _LEGACY in head: return 'torch'
    if (head[:1] == b'\x80' and head[1:2] in (b'\x02', b'\x03', b'\x04', b'\x05')
            or head[:1] in (b'(', b'}', b']', b'c')): return 'pickle'
    return 'unknown'

_NUMPY_SCALARS = [ALLOWED[('numpy._core.multiarray', 'scalar')], np.dtype,
                  *[getattr(np.dtypes, t) for t in np.dtypes.__all__]]

def load_torch_file(path) -> dict:
    """`torch.load(weights_only=True)`, admitting numpy scalars too (fastai's optimizer states hold them), as fastai's
    `load_model` does."""
    if checkpoint_format(path) == 'unknown':
        raise UserError(f"{path}: not a PyTorch checkpoint (neither a torch.save zip nor a pickle: "
                        "truncated or another format)")
    try:
        with torch.serialization.safe_globals(_NUMPY_SCALARS):
            return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        raise UserError(f"{path}: refused to load: it holds Python objects other than tensors, which could run code "
                        f"({str(e).splitlines()[0][:200]}); save only a state_dict") from None
    except Exception as e: raise UserError(f"{path}: not a PyTorch checkpoint "
                                           f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None

def _as_tensor(v):
    "A numpy array or scalar of numbers as a tensor (a native-byte-order copy); anything else unchanged."
    if isinstance(v, (np.ndarray, np.generic)) and v.dtype.kind in 'biuf':
        return torch.from_numpy(np.array(v, dtype=v.dtype.newbyteorder('=')))
    return v

def read_state_dict(path) -> dict:
    """The tensors of the checkpoint at `path`, unwrapped and without a `module.` prefix. `torch.save` files are read
    with `torch.load(weights_only=True)`, other pickles (VGGFace2's numpy `.pkl`) with `safe_load`; neither runs pickled
    code."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: weights file not found{' (it is a folder)' if path.is_dir() else ''}; "
                        "give model.weights an existing .pth or .pkl file "
                        "(relative paths are under settings.ini's weights dir)")
    fmt = checkpoint_format(path)
    if fmt == 'pickle': obj = safe_load(path, encoding='latin1')
    elif fmt == 'torch' or path.suffix.lower() in _TORCH_SUFFIXES: obj = load_torch_file(path)
    else: raise UserError(f"{path}: neither a PyTorch checkpoint (torch.save) nor a pickle of numpy arrays; "
                          "give a .pth state_dict or VGGFace2's .pkl")
    for key in ('state_dict', 'model'):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict): obj = obj[key]
    if fmt == 'pickle' and isinstance(obj, dict): obj = {k: _as_tensor(v) for k, v in obj.items()}
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and torch.is_tensor(v)
                                                       for k, v in obj.items()):
        raise UserError(f"{path}: expected a state_dict (names → tensors, or numpy arrays in a plain pickle), "
                        "or a dict holding one under 'state_dict' or 'model'")
    if all(k.startswith('module.') for k in obj): obj = {k[len('module.'):]: v for k, v in obj.items()}
    return obj

IMAGENET = 'imagenet'
"`model.weights: imagenet`: torchvision's recommended (`DEFAULT`) ImageNet weights of the arch."

def is_torchvision_weights(weights) -> bool:
    """Whether `weights` names torchvision weights (`imagenet`, or a member of the arch's weights enum such as
    `IMAGENET1K_V1` or `DEFAULT`) rather than a file."""
    return isinstance(weights, str) and (weights == IMAGENET or re.fullmatch(r'[A-Z][A-Z0-9_]*', weights) is not None)

def torchvision_weights(arch:str, name:str) -> torchvision.models.WeightsEnum:
    "torchvision's weights `name` of `arch` (`imagenet`: its `DEFAULT`); a `ValueError` listing what exists."
    try: enum = torchvision.models.get_model_weights(arch)
    except ValueError:
        from .archs import ARCHS
        have = [a for a in ARCHS if a in torchvision.models.list_models(torchvision.models)]
        raise ValueError(f"torchvision has no pretrained weights for {arch}; ImageNet weights exist for the archs "
                         f"{', '.join(have)}") from None
    try: return enum['DEFAULT' if name == IMAGENET else name]
    except KeyError:
        raise ValueError(f"{name} is not one of torchvision's {arch} weights; choose {IMAGENET} (= "
                         f"{enum.DEFAULT.name}), {', '.join(w.name for w in enum)} or DEFAULT") from None

def weights_cache_file(w:torchvision.models.WeightsEnum) -> Path:
    "Where torch's cache keeps the file of torchvision weights `w` (`$TORCH_HOME/hub/checkpoints/<file>`)."
    return Path(torch.hub.get_dir())/'checkpoints'/os.path.basename(urlparse(w.url).path)

def torchvision_state_dict(w:torchvision.models.WeightsEnum) -> dict:
    """The tensors of torchvision weights `w` from torch's cache, downloaded into it first when missing (hash checked),
    loaded with `weights_only`. A `UserError` with the exact path to put the file at when it is missing offline."""
    path = weights_cache_file(w)
    try: return w.get_state_dict(progress=True, check_hash=True, weights_only=True, map_location='cpu')
    except (OSError, RuntimeError, pickle.UnpicklingError, EOFError) as e:
        why = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        if path.is_file():
            raise UserError(f"{path}: cannot load torchvision's {w} from torch's cache ({why}); delete it to download "
                            f"it again, or replace it with {w.url}") from None
        raise UserError(f"model.weights: torchvision's {w} is not in torch's cache and could not be downloaded "
                        f"({why}); download {w.url} on a connected machine and put it at {path} "
                        "(set TORCH_HOME to use another cache folder)") from None

def load_backbone_weights(body:nn.Sequential, reference:nn.Module, path) -> list[str]:
    """Load the weights at `path` (or a state dict) into `body`, the first children of `reference` as fastai's
    `create_body` cuts them. Keys are torchvision's (`layer1.0.conv1.weight`) or fastai's `learn.save`
    (`0.4.0.conv1.weight`); every body tensor must be present with its shape. Returns the ignored classifier keys."""
    sd = path if isinstance(path, dict) else read_state_dict(path)
    if isinstance(path, dict): path = 'the state dict'
    names = [n for n, _ in reference.named_children()]
    fastai_layout = all(k.split('.', 1)[0].isdigit() for k in sd)      # Sequential(body, head) of a fastai learner
    if fastai_layout:
        mapped = {k[2:]: v for k, v in sd.items() if k.startswith('0.')}
        ignored, unexpected, shown = [k for k in sd if not k.startswith('0.')], [], lambda k: f'0.{k}'
    else:
        index = {n: str(i) for i, n in enumerate(names[:len(body)])}
        mapped, ignored, unexpected = {}, [], []
        for k, v in sd.items():
            top, _, rest = k.partition('.')
            if top in index: mapped[f'{index[top]}.{rest}'] = v
            elif top in names: ignored.append(k)
            else: unexpected.append(k)
        shown = lambda k: f"{names[int(k.split('.', 1)[0])]}.{k.split('.', 1)[1]}"   # body key -> torchvision name
    target = body.state_dict()
    unexpected += [shown(k) for k in mapped if k not in target]
    missing = [shown(k) for k in target if k not in mapped and not k.endswith('num_batches_tracked')]
    shapes = [f'{shown(k)} {tuple(mapped[k].shape)} vs {tuple(target[k].shape)}'
              for k in mapped if k in target and mapped[k].shape != target[k].shape]
    problems = [f'{what}: {", ".join(ks[:4])}{" …" if len(ks) > 4 else ""} ({len(ks)})'
                for what, ks in (('missing keys', missing), ('unexpected keys', unexpected),
                                 ('shape mismatches', shapes)) if ks]
    if problems:
        raise UserError(f"{path}: does not fit the {type(reference).__name__} backbone of model.arch: "
                        f"{'; '.join(problems)}. Check model.arch, or give a checkpoint with torchvision key names")
    body.load_state_dict(mapped, strict=False)
    return ignored
