"""Training images whose given label the model doubts, ranked, in cleanlab's report shape.

`label_quality` is cleanlab's self-confidence: the probability the model gives the given label. An image is a label
issue (`by='confident'`, cleanlab's `confident_learning` filter) when it is confidently another class: among the
classes `j` whose probability reaches the class threshold `t_j` (the mean probability of class `j` over the images
labelled `j`), the most probable is not the given label; `by='argmax'` flags every image predicted as another class.

The probabilities should come from a model that did not memorise the noise: held-out predictions, or, as EAC's
point is, a model trained with EAC (in-sample predictions of a memorising model agree with the noisy labels)."""
import numpy as np, pandas as pd

__all__ = ['ISSUE_RULES', 'label_quality', 'find_label_issues', 'label_issues_frame', 'issue_detection_scores']

ISSUE_RULES = ('confident', 'argmax')

def label_quality(labels, probs) -> np.ndarray:
    "Self-confidence: each image's probability of its given label (integer `labels`, `probs` N×K)."
    probs, labels = np.asarray(probs, dtype=float), np.asarray(labels)
    return probs[np.arange(len(labels)), labels]

def find_label_issues(labels, probs, by:str='confident') -> np.ndarray:
    "Boolean mask of the images whose given label is doubted (see the module's doc for the two rules)."
    if by not in ISSUE_RULES: raise ValueError(f"unknown rule {by!r}; choose one of {', '.join(ISSUE_RULES)}")
    probs, labels = np.asarray(probs, dtype=float), np.asarray(labels)
    if by == 'argmax': return probs.argmax(1) != labels
    k = probs.shape[1]
    thresholds = np.array([probs[labels == j, j].mean() if (labels == j).any() else np.inf for j in range(k)])
    confident = np.where(probs >= thresholds, probs, -np.inf)
    has = np.isfinite(confident).any(1)
    return has & (confident.argmax(1) != labels)

def label_issues_frame(items:pd.DataFrame, labels, probs, classes, clean=None, by:str='confident') -> pd.DataFrame:
    """One row per image of `items` (its `image` column kept), ranked from the most doubtful: `is_label_issue`,
    `label_quality`, `given_label`, `predicted_label`, and with `clean` (integer clean labels, -1 unknown)
    `clean_label` and `is_noisy`."""
    classes, probs, labels = np.asarray(classes, dtype=object), np.asarray(probs, dtype=float), np.asarray(labels)
    out = pd.DataFrame(dict(image=items['image'].to_numpy() if 'image' in items else np.arange(len(labels)),
                            is_label_issue=find_label_issues(labels, probs, by),
                            label_quality=label_quality(labels, probs),
                            given_label=classes[labels], predicted_label=classes[probs.argmax(1)]))
    if clean is not None:
        clean = np.asarray(clean)
        known = clean >= 0
        out['clean_label'] = np.where(known, classes[np.where(known, clean, 0)], '')
        noisy = pd.Series(clean != labels, dtype='boolean')
        noisy[~known] = pd.NA
        out['is_noisy'] = noisy
    return out.sort_values(['is_label_issue', 'label_quality'], ascending=[False, True],
                           kind='stable').reset_index(drop=True)

def issue_detection_scores(frame:pd.DataFrame) -> dict|None:
    """Precision and recall of `is_label_issue` against the images whose label is known to be noisy
    (None without clean labels)."""
    if 'is_noisy' not in frame: return None
    known = frame[frame.is_noisy.notna()]
    if known.empty: return None
    flagged, noisy = known.is_label_issue.astype(bool), known.is_noisy.astype(bool)
    hit = int((flagged & noisy).sum())
    return dict(flagged=int(flagged.sum()), noisy=int(noisy.sum()), true_positives=hit,
                precision=hit/int(flagged.sum()) if flagged.any() else None,
                recall=hit/int(noisy.sum()) if noisy.any() else None)
