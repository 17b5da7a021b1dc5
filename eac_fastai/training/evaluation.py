"""A cheaper evaluation schedule: a fixed class-balanced subset of the evaluation split in the earlier epochs, the whole
split in the last ones. Training is untouched (the same batches, the same random numbers): only what is scored changes,
and each epoch's `eval_images` in history.csv says on how many images."""
import numpy as np, pandas as pd
from fastai.callback.core import Callback
from fastai.distributed import DistributedTrainer
from fastai.learner import ValueMetric
from fastcore.basics import store_attr
from ..analysis.outputs import Rows
from ..analysis.memorisation import rng_preserved

__all__ = ['balanced_subset', 'EvalSubsetCallback']

def balanced_subset(labels, n:int, seed:int=0) -> np.ndarray:
    """Sorted positions of `n` of `labels` (all of them when there are fewer), the same number per class where the
    classes allow: a class with fewer images gives them all and the others share the rest; drawn with `seed`."""
    labels = pd.Series(np.asarray(labels))
    if n >= len(labels): return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    groups = {c: rng.permutation(np.flatnonzero(labels.to_numpy() == c)) for c in sorted(labels.unique())}
    quota, left = {}, n
    for i, c in enumerate(sorted(groups, key=lambda c: len(groups[c]))):   # smallest first: a short class gives all
        quota[c] = min(len(groups[c]), left // (len(groups) - i)); left -= quota[c]
    return np.sort(np.concatenate([groups[c][:quota[c]] for c in groups]))

class EvalSubsetCallback(Callback):
    "Score a fixed class-balanced subset of `n` evaluation images in each epoch but the last `full_last` (all of them)."
    order = DistributedTrainer.order - 1               # its loaders set before the distributed wrapper takes them
    def __init__(self, n:int=2000, full_last:int=5, seed:int=0): store_attr()

    def before_fit(self):
        self.metric = None
        if self.learn.lock.locked() or hasattr(self.learn, 'lr_finder'): return   # validate, get_preds, lr_find
        self.full = self.dls.loaders[1]
        rows = balanced_subset(self.full.dataset.items.label, self.n, self.seed)
        with rng_preserved(): self.subset = self.full.new(dataset=Rows(self.full.dataset, rows))   # (it draws a seed)
        self.metric = ValueMetric(lambda: len(self.dls.loaders[1].dataset), 'eval_images')
        self.learn.metrics = [*self.learn.metrics, self.metric]

    def before_epoch(self):
        if self.metric is None: return
        self.learn.dls.loaders[1] = self.full if self.epoch >= self.n_epoch - self.full_last else self.subset

    def after_fit(self):
        if self.metric is None: return
        self.learn.dls.loaders[1] = self.full
        self.learn.metrics = [m for m in self.learn.metrics if m is not self.metric]
        self.metric = self.subset = self.full = None
