"""Memorisation of noisy labels, epoch by epoch (the paper's argument: EAC does not fit the flipped labels).

Among the training images whose given label differs from their `clean_label`, the share the model predicts as the
given (wrong) label, `flipped_as_given`, and as the clean label, `flipped_as_clean`: the images as the model sees them
at test time (no augmentation, eval mode), after each epoch's validation. Measuring leaves every random number
generator as it found it, so a run trains exactly as it would without it (tested)."""
from contextlib import contextmanager
import numpy as np, pandas as pd, torch
from fastai.callback.core import Callback
from fastai.distributed import DistributedTrainer
from fastai.learner import ValueMetric
from .outputs import outputs, training_dl
from ..training.checkpoint import rng_states, set_rng_states
from ..data.core import CLEAN

__all__ = ['flipped_rows', 'rng_preserved', 'MemorisationCallback']

@contextmanager
def rng_preserved():
    "Restore the states of Python's, NumPy's and torch's (CPU and CUDA) random number generators on exit."
    state = rng_states()
    try: yield
    finally: set_rng_states(state)

def flipped_rows(items) -> np.ndarray:
    """Positions of the rows of a label frame whose `label` differs from a non-empty `clean_label`
    (empty without that column)."""
    if not isinstance(items, pd.DataFrame) or CLEAN not in items.columns: return np.zeros(0, dtype=int)
    clean = items[CLEAN].fillna('')
    return np.flatnonzero(((items.label != clean) & (clean != '')).to_numpy())

class MemorisationCallback(Callback):
    """Log `flipped_as_given` and `flipped_as_clean` (shares of the training images with a flipped label)
    after each validation."""
    # before Recorder reads the metrics, and set up before the loaders are distributed
    order = DistributedTrainer.order - 1
    # batch size of the extra pass (default: the validation loader's)
    def __init__(self, bs:int|None=None): self.bs = bs

    def before_fit(self):
        self.metrics_added = []
        # validate/get_preds/lr_find: nothing to track
        if self.learn.lock.locked() or hasattr(self.learn, 'lr_finder'): return
        items = self.dls.train_ds.items
        rows = flipped_rows(items)
        if not len(rows): return
        vocab = {c: i for i, c in enumerate(self.dls.vocab)}
        self.given = torch.tensor(items.label.iloc[rows].map(vocab).to_numpy(dtype='int64'))
        self.clean = torch.tensor(items[CLEAN].iloc[rows].map(vocab).to_numpy(dtype='int64'))
        with rng_preserved(): self.flipped_dl = training_dl(self.dls, rows, self.bs)   # a new DataLoader draws a seed
        self.values = dict.fromkeys(('flipped_as_given', 'flipped_as_clean'))
        self.metrics_added = [ValueMetric(lambda k=k: self.values[k], k) for k in self.values]
        self.learn.metrics = [*self.learn.metrics, *self.metrics_added]

    def predict(self) -> torch.Tensor:
        "The class the model predicts for each training image with a flipped label."
        # iterating draws a base seed
        with rng_preserved(): return outputs(self.learn.model, self.flipped_dl)[0].argmax(1)

    def after_validate(self):
        if not self.metrics_added or self.learn.lock.locked(): return
        pred = self.predict()
        self.values.update(flipped_as_given=(pred == self.given).float().mean().item(),
                           flipped_as_clean=(pred == self.clean).float().mean().item())

    def after_fit(self):
        if self.metrics_added: self.learn.metrics = [m for m in self.learn.metrics if m not in self.metrics_added]
        self.metrics_added, self.flipped_dl = [], None
