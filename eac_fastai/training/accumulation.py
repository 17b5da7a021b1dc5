"Gradient accumulation (`train.accumulate`) through fastai's `GradientAccumulation`, a step never spanning two epochs."
from fastai.callback.training import GradientAccumulation
from fastai.torch_core import find_bs

__all__ = ['EpochGradientAccumulation']

class EpochGradientAccumulation(GradientAccumulation):
    """fastai's `GradientAccumulation` over `n` micro-batches of `bs` images (each with `labels_per_image` labels: AC
    stacks the mirror's), restarted every epoch: an epoch's last micro-batches make one step even when fewer than `n`,
    so an epoch boundary (and `--resume`) never splits a step. The method callbacks run per micro-batch, before it."""
    def __init__(self, n:int, bs:int, labels_per_image:int=1):
        super().__init__(n_acc=n*bs*labels_per_image)
    def before_epoch(self): self.count = 0
    def before_step(self):
        if self.iter < self.n_iter - 1: return super().before_step()
        self.learn.loss_grad *= self.n_acc/find_bs(self.learn.yb)     # the epoch's last micro-batch: step
        self.count = 0
