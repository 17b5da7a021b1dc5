"Terminal output for training runs: a rich table row per epoch and a transient progress bar within long epochs."
from fastai.callback.core import Callback
from fastcore.basics import store_attr
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ['RichProgressCallback']

class RichProgressCallback(Callback):
    """Print each epoch's record (`recorder.log`) as a rich table row, with a progress bar within epochs of at least
    `min_batches` batches. Use it inside `learn.no_bar()` and `learn.no_logging()`, which silence fastprogress and
    print."""
    order = 60                                         # after Recorder (50) has completed the epoch's log
    def __init__(self, console:Console|None=None, min_batches:int=30): store_attr()

    @property
    def _active(self): return not hasattr(self.learn, 'lr_finder')

    def before_fit(self):
        self.console, self.bar = self.console or Console(), None
        if not self._active: return
        names = list(self.recorder.metric_names)
        self.widths = [max(len(n), 9) for n in names]
        self._print(names, style='bold')

    def _print(self, cells, style=None):
        self.console.print('  '.join(str(c).rjust(w) for c, w in zip(cells, self.widths)), style=style, highlight=False,
                           soft_wrap=True)

    def after_epoch(self):
        if self._active:
            self._print(f'{v:.4f}' if isinstance(v, float) else '-' if v is None else v for v in self.recorder.log)

    def _start_bar(self, what:str):
        if not self._active or len(self.dl) < self.min_batches: return
        self.bar = Progress(TextColumn(f'epoch {self.epoch} {what}'), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=self.console, transient=True)
        self.bar.start()
        self.task = self.bar.add_task(what, total=len(self.dl))

    def _stop_bar(self):
        if self.bar is not None: self.bar.stop(); self.bar = None
    def before_train(self): self._start_bar('train')
    def before_validate(self): self._start_bar('valid')
    def after_batch(self):
        if self.bar is not None: self.bar.advance(self.task)
    after_train = after_validate = after_cancel_train = after_cancel_validate = after_fit = _stop_bar
