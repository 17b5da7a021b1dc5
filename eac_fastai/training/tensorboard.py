"TensorBoard logging of a run (`train.loggers: [tensorboard]`); imported only when asked for (it needs `tensorboard`)."
from fastai.callback.tensorboard import TensorBoardCallback

__all__ = ['RunTensorBoard']

class RunTensorBoard(TensorBoardCallback):
    """fastai's `TensorBoardCallback` (every history.csv column per epoch, the smoothed loss and the optimizer's
    numeric hyper-parameters per batch) with the recipe as the text `recipe`. torch's optimizers, which fastai wraps,
    also hold flags, tuples and None among their hyper-parameters: those are not logged."""
    def __init__(self, log_dir, recipe_yaml:str):
        super().__init__(log_dir=log_dir, trace_model=False, log_preds=False)
        self.recipe_yaml = recipe_yaml
    def before_fit(self):
        super().before_fit()
        if self.run: self.writer.add_text('recipe', f"```yaml\n{self.recipe_yaml}```", 0)
    def after_batch(self):
        self.writer.add_scalar('train_loss', self.smooth_loss, self.train_iter)
        for i, h in enumerate(self.opt.hypers):
            for k, v in h.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool): self.writer.add_scalar(f'{k}_{i}', v,
                                                                                                   self.train_iter)
