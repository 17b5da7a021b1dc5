"""Class-balanced metrics beside overall accuracy: RAF-DB's and AffectNet's papers report the mean of the per-class
accuracies too (overall accuracy rewards the majority classes: RAF-DB's test set is 38% Happiness)."""
import numpy as np, torch
from fastai.metrics import AccumMetric

__all__ = ['mean_class_accuracy', 'MeanClassAccuracy', 'per_class_accuracy']

def mean_class_accuracy(inp, targ) -> torch.Tensor:
    "The mean over the classes in `targ` of the share of each class's items predicted as it (balanced accuracy)."
    pred = inp.argmax(-1)
    return torch.stack([(pred[targ == c] == c).float().mean() for c in targ.unique()]).mean()

def MeanClassAccuracy() -> AccumMetric:
    "`mean_class_accuracy` over all of an epoch's predictions (gathered from every process), as a fastai metric."
    return AccumMetric(mean_class_accuracy, flatten=False)

def per_class_accuracy(labels, preds, classes) -> dict[str, float|None]:
    "Each class's accuracy among the items labelled with it, in `classes`' order (None: no item has that label)."
    labels, preds = np.asarray(labels), np.asarray(preds)
    return {c: float((preds[labels == c] == c).mean()) if (labels == c).any() else None for c in classes}
