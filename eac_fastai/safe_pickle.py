"""Read Python pickles of plain data (dicts, lists, strings, bytes, numbers and numpy arrays) without running code.

The VGGFace2 ResNet-50 weights (`resnet50_ft_weight.pkl`) and the CIFAR-100 batches are such pickles. A pickle
can name any importable callable; `safe_load` admits only the few numpy and standard-library constructors that
rebuild arrays and ordered dicts, and refuses everything else with a `UserError`."""
import collections, codecs, pickle
from pathlib import Path
import numpy as np
from .errors import UserError

__all__ = ['ALLOWED', 'safe_load']

def _numpy(module:str, name:str):
    "`name` from numpy's core module, whichever of numpy 1's `numpy.core` or numpy 2's `numpy._core` exists."
    import importlib
    for mod in (f'numpy._core.{module}', f'numpy.core.{module}'):
        try: return getattr(importlib.import_module(mod), name)
        except (ImportError, AttributeError): continue
    raise ImportError(f'numpy has no {module}.{name}')

ALLOWED = {('numpy', 'ndarray'): np.ndarray, ('numpy', 'dtype'): np.dtype,
           ('_codecs', 'encode'): codecs.encode, ('collections', 'OrderedDict'): collections.OrderedDict}
for _core in ('numpy.core', 'numpy._core'):
    ALLOWED.update({(f'{_core}.multiarray', '_reconstruct'): _numpy('multiarray', '_reconstruct'),
                    (f'{_core}.multiarray', 'scalar'): _numpy('multiarray', 'scalar'),
                    (f'{_core}.numeric', '_frombuffer'): _numpy('numeric', '_frombuffer')})

class _Refused(pickle.UnpicklingError): "The pickle names a callable outside `ALLOWED`."

class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in ALLOWED: return ALLOWED[(module, name)]
        raise _Refused(f"it names {module}.{name}, and only numpy arrays and plain Python data are loaded")

def safe_load(path, encoding:str='latin1'):
    """The object pickled in the file at `path`, which may hold only plain data and numpy arrays (`encoding` as in
    `pickle.load`)."""
    path = Path(path)
    if not path.is_file(): raise UserError(f"{path}: file not found{' (it is a folder)' if path.is_dir() else ''}")
    try:
        with open(path, 'rb') as f: return _Unpickler(f, encoding=encoding).load()
    except _Refused as e: raise UserError(f"{path}: refused to load: {e} (it could run code)") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, OSError,
            UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a readable pickle "
                        f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})") from None
