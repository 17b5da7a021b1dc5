"""Pretrained backbone weights from a local file, loaded without executing pickled code.

Accepted layouts: a torchvision `state_dict` (e.g. `resnet18-f37072fd.pth`), a checkpoint dict with
the state under `'state_dict'` (RUL's `resnet18_msceleb.pth`), fastai's `learn.save` files (an eac-fastai
run's `models/best.pth`), keys optionally prefixed `module.` (DataParallel), and a plain pickle of names → numpy
arrays (VGGFace2's `resnet50_ft_weight.pkl`, for `resnet50_vggface2`). The format is read from the file's first bytes.
The classifier is dropped: a new head is trained."""
import pickle
from pathlib import Path
import numpy as np, torch
from torch import nn
from ..errors import UserError
from ..safe_pickle import ALLOWED, safe_load

__all__ = ['checkpoint_format', 'load_torch_file', 'read_state_dict', 'load_backbone_weights']

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

def load_backbone_weights(body:nn.Sequential, reference:nn.Module, path) -> list[str]:
    """Load the weights at `path` into `body`, the first children of `reference` as fastai's `create_body` cuts them.
    Keys are torchvision's (`layer1.0.conv1.weight`) or fastai's `learn.save` (`0.4.0.conv1.weight`); every body
    tensor must be present with its shape. Returns the ignored classifier keys."""
    sd = read_state_dict(path)
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
