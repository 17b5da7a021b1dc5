"TensorBoard logging of a run (`train.loggers: [tensorboard]`); imported only when asked for (it needs `tensorboard`)."
from fastai.callback.tensorboard import TensorBoardCallback
from torch.utils.tensorboard import SummaryWriter

__all__ = ['RunTensorBoard']

class RunTensorBoard(TensorBoardCallback):
    """fastai's `TensorBoardCallback` (every history.csv column per epoch, the smoothed loss and the optimizer's
    numeric hyper-parameters per training batch) with the recipe as the text `recipe`. Its writer opens at the first
    epoch, when a resumed run's step is known: TensorBoard then drops what the interrupted epoch had logged past it.
    torch's optimizers, which fastai wraps, also hold flags, tuples and None among their hyper-parameters: not
    logged."""
    def __init__(self, log_dir, recipe_yaml:str):
        super().__init__(log_dir=log_dir, trace_model=False, log_preds=False)
        self.recipe_yaml = recipe_yaml
    def _setup_writer(self): self.writer = None
    def before_epoch(self):
        if not self.run or self.writer is not None: return
        # steps are logged after fastai counts the batch: this run logs from train_iter + 1 on
        self.writer = SummaryWriter(log_dir=self.log_dir, purge_step=self.train_iter + 1 if self.train_iter else None)
        if not self.train_iter: self.writer.add_text('recipe', f"```yaml\n{self.recipe_yaml}```", 0)
    def after_batch(self):
        if not self.training: return                   # fastai's logs validation batches too, at the same step
        self.writer.add_scalar('train_loss', self.smooth_loss, self.train_iter)
        for i, h in enumerate(self.opt.hypers):
            for k, v in h.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool): self.writer.add_scalar(f'{k}_{i}', v,
                                                                                                   self.train_iter)
    def after_fit(self):
        if self.run and self.writer is not None: self.writer.close()
        self.writer = None
