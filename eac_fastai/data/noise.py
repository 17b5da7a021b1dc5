"""Synthetic label noise, seeded and exact.

Convention (cleanlab's): `noise_matrix[i, j] = P(given label = i | true label = j)`, so every
**column** sums to 1 and the diagonal holds the keep rates. Many papers write the transpose
(rows = true class); `transition_matrix = noise_matrix.T` converts.
"""
import numpy as np
from ..errors import UserError

__all__ = ['symmetric_noise_matrix', 'pairflip_noise_matrix', 'check_noise_matrix', 'generate_noisy_labels',
           'noise_matrix_from_csv', 'actual_noise_rate', 'add_label_noise']

def symmetric_noise_matrix(n_classes:int, rate:float) -> np.ndarray:
    "Keep each label with `1-rate`, else move it uniformly to one of the *other* classes (SCN's generator)."
    _check_rate(rate)
    if n_classes < 2: raise ValueError("symmetric noise needs at least 2 classes")
    m = np.full((n_classes, n_classes), rate/(n_classes-1))
    np.fill_diagonal(m, 1-rate)
    return m

def pairflip_noise_matrix(n_classes:int, rate:float) -> np.ndarray:
    "Keep each label with `1-rate`, else move class `j` to class `(j+1) % n_classes`."
    _check_rate(rate)
    if n_classes < 2: raise ValueError("pair-flip noise needs at least 2 classes")
    m = np.eye(n_classes)*(1-rate)
    m[(np.arange(n_classes)+1) % n_classes, np.arange(n_classes)] += rate
    return m

def _check_rate(rate):
    if not 0 <= rate <= 1: raise ValueError(f"noise rate must be in [0, 1], got {rate}")

def check_noise_matrix(m, n_classes:int|None=None) -> np.ndarray:
    "`m` as a float array if it is a valid noise matrix (square, non-negative, columns summing to 1), else ValueError."
    m = np.asarray(m, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]: raise ValueError(f"noise matrix must be square, got shape {m.shape}")
    if n_classes is not None and m.shape[0] != n_classes:
        raise ValueError(f"noise matrix is {m.shape[0]}x{m.shape[0]} but there are {n_classes} classes")
    if (m < 0).any(): raise ValueError("noise matrix has negative entries")
    bad = np.flatnonzero(~np.isclose(m.sum(0), 1, atol=1e-6))
    if len(bad): raise ValueError(f"noise matrix columns must sum to 1 (P(given | true=j)); "
                                  f"column(s) {bad.tolist()} do not")
    return m / m.sum(0, keepdims=True)                 # exactly 1, as sampling needs

def generate_noisy_labels(true_labels, noise_matrix, *, seed:int=0, exact:bool=True) -> np.ndarray:
    """Noisy copies of integer `true_labels` drawn through `noise_matrix` (columns = true class).

    `exact=True` changes exactly `round(n_j · (1 - noise_matrix[j,j]))` labels of true class `j` (halves round up)
    and spreads them over the other classes in proportion to column `j` (largest remainders, ties at random);
    `exact=False` draws each label independently, as SCN's generator does. Same seed, same labels."""
    y = np.asarray(true_labels)
    m = check_noise_matrix(noise_matrix)
    k = len(m)
    if y.size and (y.min() < 0 or y.max() >= k): raise ValueError(f"labels must be in 0..{k-1}")
    rng = np.random.default_rng(seed)
    out = y.copy()
    for j in range(k):
        idx = np.flatnonzero(y == j)
        if not len(idx): continue
        if exact:
            counts = np.zeros(k, dtype=int)
            others = np.arange(k) != j
            n_flip = int(np.floor(len(idx)*(1 - m[j, j]) + 0.5 + 1e-9))
            if n_flip: counts[others] = _largest_remainder(m[others, j]/m[others, j].sum()*n_flip, n_flip, rng)
            counts[j] = len(idx) - n_flip
            out[rng.permutation(idx)] = np.repeat(np.arange(k), counts)
        else: out[idx] = rng.choice(k, size=len(idx), p=m[:, j])
    return out

def _largest_remainder(x:np.ndarray, total:int, rng) -> np.ndarray:
    "Integers near `x` that sum to `total`: the largest remainders get the extra units, ties broken at random."
    base = np.floor(x + 1e-9).astype(int)
    order = rng.permutation(len(x))
    base[order[np.argsort(-(x-base)[order], kind='stable')[:total - base.sum()]]] += 1
    return base

def noise_matrix_from_csv(path, n_classes:int) -> np.ndarray:
    "Read a `n_classes`×`n_classes` noise matrix (rows = given, columns = true) from a headerless CSV."
    try: m = np.loadtxt(path, delimiter=',', ndmin=2)
    except (OSError, ValueError) as e: raise UserError(f"{path}: cannot read a numeric noise matrix ({e})") from None
    try: return check_noise_matrix(m, n_classes)
    except ValueError as e: raise UserError(f"{path}: {e}") from None

def actual_noise_rate(given, true) -> float:
    "Fraction of labels that differ from the clean ones."
    given, true = np.asarray(given), np.asarray(true)
    return float((given != true).mean()) if len(given) else 0.

def add_label_noise(df, classes, noise_matrix, *, seed:int=0, exact:bool=True, splits=('train',)):
    """A copy of label-CSV frame `df` whose `label` is noisy on rows of `splits`; the truth is kept in `clean_label`
    (its non-empty values, else `label`). Other splits keep their labels."""
    classes = list(classes)
    truth = df['label'].copy()
    if 'clean_label' in df.columns: truth = truth.where(df['clean_label'].fillna('') == '', df['clean_label'])
    rows = df['split'].isin(splits).to_numpy()
    unknown = ~truth.isin(classes) & rows
    if unknown.any(): raise ValueError(f"line(s) {', '.join(str(i+2) for i in np.flatnonzero(unknown)[:5])}: "
                                       f"labels {sorted(set(truth[unknown]))[:3]} are not among the classes {classes}")
    y = truth.map({c: i for i, c in enumerate(classes)}).to_numpy()
    noisy = df['label'].to_numpy().copy()
    noisy[rows] = np.array(classes)[generate_noisy_labels(y[rows].astype(int), noise_matrix, seed=seed, exact=exact)]
    return df.assign(label=noisy, clean_label=truth.to_numpy())
