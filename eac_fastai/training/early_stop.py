"Early stopping on the validation split (`train.early_stop`), continued exactly by `--resume`."
from fastai.callback.tracker import EarlyStoppingCallback

__all__ = ['EarlyStopping']

class EarlyStopping(EarlyStoppingCallback):
    """fastai's `EarlyStoppingCallback`; a resumed run replays `history` (history.csv's rows so far) to get back the
    best value and the epochs waited. `stopped`: whether it ended the fit."""
    def __init__(self, monitor:str='accuracy', patience:int=10, min_delta:float=0., history=None):
        super().__init__(monitor=monitor, min_delta=min_delta, patience=patience)
        self.history, self.stopped = history, False
    def before_fit(self):
        super().before_fit()
        for v in ([] if self.history is None else self.history[self.monitor]):
            if self.comp(v - self.min_delta, self.best): self.best, self.wait = v, 0
            else: self.wait += 1
    def after_cancel_fit(self): self.stopped = self.wait >= self.patience
