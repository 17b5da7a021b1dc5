"""Training methods as fastai callbacks, and the registry of their names: a method is one module (its settings section
beside its callback) plus one line in `METHODS`; the recipe schema, its reference and the learner read it from there."""
from .base import AugmentCallback
from .ac import ACCallback
from .eac import EACCallback
from .rul import RULCallback
from .scn import SCNCallback
from .nla import NLACallback

__all__ = ['METHODS', 'method_callback']

# the baseline (CE with the same augmentation), then by year, as tables list them
METHODS = {'baseline': AugmentCallback,
           'ac': ACCallback, 'scn': SCNCallback, 'rul': RULCallback, 'eac': EACCallback, 'nla': NLACallback}

def method_callback(method:str='eac', **kwargs):
    "The training callback of `method` (a name in `METHODS`), built with `kwargs` (augmentation and settings)."
    if method not in METHODS: raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return METHODS[method](**kwargs)
