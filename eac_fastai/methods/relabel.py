"""Relabelling of training images, as SCN's official code does it (EAC_SPEC §6.2): from epoch `relabel_epoch` on, an
image whose top probability beats its current label's by more than a margin takes the predicted label, and keeps it in
later epochs. `RelabelCallback` is the base of the methods that relabel (SCN; RUL with `rul.relabel`)."""
import pandas as pd, torch
from torch import Tensor
from fastai.learner import ValueMetric
from .base import MethodCallback

__all__ = ['margin_relabel', 'train_labels', 'RelabelCallback']

def margin_relabel(probs:Tensor, labels:Tensor, margin:float=0.2, allowed:Tensor|None=None) -> tuple[Tensor, Tensor]:
    "New labels where `max prob − prob of the label > margin` (and `allowed`), and the mask of changed images."
    pmax, pred = probs.max(1)
    change = pmax - probs.gather(1, labels[:, None])[:, 0] > margin
    if allowed is not None: change &= allowed
    return torch.where(change, pred, labels), change

def train_labels(dls) -> Tensor:
    "The class index of every training item, read without loading an image."
    items = dls.train_ds.items
    if isinstance(items, pd.DataFrame) and 'label' in items.columns:
        return torch.tensor(items.label.map(dls.vocab.o2i).to_numpy(dtype='int64'))
    ys = dls.train_ds.tls[-1]
    return torch.tensor([int(ys[i]) for i in range(len(ys))])

class RelabelCallback(MethodCallback):
    """Base of the methods that relabel: every training image's given and current label (kept in `models/resume.pth`),
    each batch trained on its images' current labels, and `relabelled` logged (the share changed so far). Active when
    `relabels` is true; a subclass calls `relabel_batch` with its probabilities."""
    relabels = True                                    # whether this run keeps and changes labels
    given = labels = None                              # every training image's label: as given, and now

    def setup(self):
        if not self.relabels: return
        given = train_labels(self.dls)
        if self.given is None or not torch.equal(self.given, given): self.given, self.labels = given, given.clone()
        self.term_metrics.append(ValueMetric(self.relabelled_share, 'relabelled'))
        self.learn.metrics = [*self.learn.metrics, self.term_metrics[-1]]

    def method_state(self) -> dict: return dict(given=self.given, labels=self.labels) if self.relabels else {}
    def load_method_state(self, state:dict): self.given, self.labels = state.get('given'), state.get('labels')

    def relabelled_share(self):
        return (self.labels != self.given).float().mean().item() if self.labels is not None else None

    def before_batch(self):
        super().before_batch()
        if not self.relabels: return
        n = self.y.shape[0]
        # this epoch's sampler order, drawn by fastai in the main process
        order = self.dl._DataLoader__idxs
        idx = self.batch_idx = torch.as_tensor(order[self.iter*self.dl.bs:][:n], dtype=torch.long)
        # checked in the first epoch
        if self.epoch == 0 and (len(idx) != n or not torch.equal(self.given[idx], self.y.cpu())):
            raise RuntimeError(f"{self.name.upper()} could not match this batch to its training images; "
                               "it needs the DataLoader's own sampler")
        self.learn.yb = (self.labels[idx].to(self.y.device),)   # relabelled images train on their new label

    def relabel_batch(self, probs:Tensor, margin:float, allowed:Tensor|None=None):
        """`margin_relabel` of this batch's images from epoch `relabel_epoch` (1-based) on, outside lr_find; the new
        labels are used from the next time the images are drawn."""
        if self.epoch + 1 < self.relabel_epoch or hasattr(self.learn, 'lr_finder'): return
        new, _ = margin_relabel(probs.detach().float(), self.y.detach(), margin, allowed)
        self.labels[self.batch_idx] = new.cpu()

    def relabel_frame(self) -> pd.DataFrame:
        "The training items with their given label, current (possibly relabelled) label and whether it changed."
        vocab = list(self.dls.vocab)
        items = self.dls.train_ds.items
        items = (items.drop(columns=['is_valid', 'path'], errors='ignore').reset_index(drop=True)
                 if isinstance(items, pd.DataFrame) else pd.DataFrame(dict(item=list(map(str, items)))))
        now = {f'{self.name}_label': [vocab[i] for i in self.labels]}
        return items.assign(given=[vocab[i] for i in self.given], **now, relabelled=(self.labels != self.given).numpy())
