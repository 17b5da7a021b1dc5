"A run whose loss becomes NaN or infinite stops at that batch, keeping its last good epoch."
import torch
from fastai.callback.core import Callback
from fastai.learner import CancelFitException

__all__ = ['DivergenceCallback']

class DivergenceCallback(Callback):
    """Cancel the fit at the first batch whose loss (with the method's terms) is NaN or infinite: before that batch's
    step, and before the epoch's checkpoints and history row are written. `diverged` then says where."""
    order = 100                                        # after every callback that adds to the loss
    def before_fit(self): self.diverged = None
    def after_loss(self):
        loss = self.learn.loss_grad if self.training else self.learn.loss
        if bool(torch.isfinite(loss).all()): return
        self.diverged = dict(epoch=self.epoch, batch=self.iter, n_batches=self.n_iter, value=str(float(loss.mean())),
                             split='training' if self.training else 'evaluation')
        raise CancelFitException()
