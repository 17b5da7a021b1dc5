"""What a trained model does on its training images: class probabilities, pooled features and attention maps.

Everything runs the model as at test time (eval mode, no augmentation) over the images as the DataBlock (or cache)
gives them. `attention_maps` is the paper's class activation map for every head: the gradient of a class logit with
respect to the body's feature map times that map, summed over channels. For a global-average-pool → Linear head (CE,
EAC, AC) that is exactly the CAM `Σ_c W[k,c]·F[c,h,w]` divided by H·W; for RUL's head, linear in the features at test
time, it is the exact share of each position in the logit (its constant aside); for SCN, whose importance weight
multiplies the logits, it includes that weight's gradient."""
from dataclasses import dataclass
import numpy as np, pandas as pd, torch, torch.nn.functional as F
from torch import Tensor
from ..data.core import CLEAN

__all__ = ['Rows', 'training_dl', 'TTA', 'outputs', 'TrainingOutputs', 'training_outputs', 'attention_maps']

class Rows(torch.utils.data.Dataset):
    "The items of `ds` at positions `rows`."
    def __init__(self, ds, rows): self.ds, self.rows = ds, np.asarray(rows)
    def __len__(self): return len(self.rows)
    def __getitem__(self, i): return self.ds[int(self.rows[i])]

def training_dl(dls, rows=None, bs:int|None=None):
    "A loader over the training images (all, or those at positions `rows`) in order, without augmentation."
    ds = dls.train_ds if rows is None else Rows(dls.train_ds, rows)
    return dls.valid.new(dataset=ds, shuffle=False, drop_last=False, bs=bs or dls.valid.bs)

def _body_head(model):
    model = getattr(model, 'module', model)
    return model[0], model[1]

TTA = ('flip',)                                         # test-time augmentations `outputs` knows

def outputs(model, dl, tta:str|None=None) -> tuple[Tensor, Tensor]:
    """Softmax probabilities (N×K) and globally averaged body features (N×C) of every image of `dl`, on the CPU.
    `tta='flip'`: the probabilities are the mean of the image's and its mirror's (the symmetry EAC trains for); the
    features stay the image's."""
    if tta not in (None, *TTA): raise ValueError(f"tta {tta!r}: choose one of {', '.join(TTA)}")
    body, head = _body_head(model)
    training, probs, feats = model.training, [], []
    model.eval()
    with torch.no_grad():
        for xb, *_ in dl:
            n = len(xb)
            f = body(torch.cat([xb, xb.flip(-1)]) if tta == 'flip' else xb)    # one pass; eval-mode BatchNorm
            p = F.softmax(head(f).float(), 1)
            if tta == 'flip': p = (p[:n] + p[n:])/2
            probs.append(p.cpu()); feats.append(f[:n].float().mean((2, 3)).cpu())
    model.train(training)
    return torch.cat(probs), torch.cat(feats)

@dataclass
class TrainingOutputs:
    """The training images of a learner with their given and clean labels (class indices, -1: unknown)
    and the model's outputs."""
    items: pd.DataFrame
    labels: np.ndarray
    clean: np.ndarray|None                              # None: the CSV has no clean_label column
    probs: np.ndarray
    features: np.ndarray

def training_outputs(learn) -> TrainingOutputs:
    "Probabilities and pooled features of every training image of `learn` (in the CSV's order), with their labels."
    items, o2i = learn.dls.train_ds.items, {c: i for i, c in enumerate(learn.dls.vocab)}
    probs, feats = outputs(learn.model, training_dl(learn.dls))
    clean = items[CLEAN].map(lambda c: o2i.get(c, -1)).to_numpy(dtype=int) if CLEAN in items.columns else None
    return TrainingOutputs(items.reset_index(drop=True), items.label.map(o2i).to_numpy(dtype=int), clean, probs.numpy(),
                           feats.numpy())

def attention_maps(model, x:Tensor, classes:Tensor|None=None) -> tuple[Tensor, Tensor]:
    """Each image's attention map (N×H×W, the body's resolution) for `classes` (default: its predicted class),
    and those classes."""
    body, head = _body_head(model)
    training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            f = body(x).detach().float().requires_grad_()
            logits = head(f)
            k = logits.argmax(1) if classes is None else torch.as_tensor(classes, device=logits.device)
            grad, = torch.autograd.grad(logits.gather(1, k[:, None]).sum(), f)
    finally: model.train(training)
    return (grad*f).sum(1).detach(), k.detach()
