"A run whose loss becomes NaN or infinite stops at that batch, keeping its last good epoch."
import torch, torch.distributed as dist
from fastai.callback.core import Callback
from fastai.learner import CancelFitException
from fastai.torch_core import num_distrib

__all__ = ['DivergenceCallback']

class DivergenceCallback(Callback):
    """Cancel the fit at the first batch whose loss (with the method's terms) is NaN or infinite: before that batch's
    step, and before the epoch's checkpoints and history row are written. `diverged` then says where. A device sync
    per batch (as fastai's `TerminateOnNaNCallback`); in several processes, an all-reduce of the verdict."""
    order = 100                                        # after every callback that adds to the loss
    diverged = None
    def before_fit(self): self.diverged = None
    def after_loss(self):
        loss = (self.learn.loss_grad if self.training else self.learn.loss).detach()
        finite = torch.isfinite(loss).all()
        if num_distrib() > 1:                          # one process's NaN stops them all, at the same batch
            finite = finite.float(); dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if bool(finite): return
        self.diverged = dict(epoch=self.epoch, batch=self.iter, n_batches=self.n_iter, value=str(float(loss.mean())),
                             split='training' if self.training else 'evaluation')
        raise CancelFitException()
