"Early stopping on the validation split (`train.early_stop`), continued exactly by `--resume`."
import numpy as np
from fastai.callback.tracker import EarlyStoppingCallback

__all__ = ['EarlyStopping']

class EarlyStopping(EarlyStoppingCallback):
    """fastai's `EarlyStoppingCallback`, remembering the epoch of the best value (`best_epoch`, that of `best.pth`); a
    resumed run replays `history` (history.csv's rows so far) to get back the best value and the epochs waited.
    `stopped`: whether it ended the fit."""
    def __init__(self, monitor:str='accuracy', patience:int=10, min_delta:float=0., history=None):
        super().__init__(monitor=monitor, min_delta=min_delta, patience=patience)
        self.history, self.stopped, self.best_epoch = history, False, None
        if history is not None: self._replay()

    def _replay(self):
        "Best value, its epoch and epochs waited after the rows of `history`; `stopped` if they reach `patience`."
        self.best = float('inf') if self.comp == np.less else -float('inf')    # as TrackerCallback starts
        self.wait = 0
        for epoch, v in zip(self.history.epoch, self.history[self.monitor]):
            if self.comp(v - self.min_delta, self.best): self.best, self.best_epoch, self.wait = v, int(epoch), 0
            else: self.wait += 1
        self.stopped = self.wait >= self.patience       # the run stopped, then was cut before it finished

    def before_fit(self):
        super().before_fit()
        if self.history is not None: self._replay()
    def after_epoch(self):
        super().after_epoch()                          # raises to stop, never on a new best
        if self.new_best: self.best_epoch = self.epoch
    def after_cancel_fit(self): self.stopped = self.wait >= self.patience
