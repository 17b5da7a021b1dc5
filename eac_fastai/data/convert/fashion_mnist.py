"Fashion-MNIST (its four IDX files) as a noisy-label CSV and 28×28 grayscale PNGs."
import gzip, os
from pathlib import Path
import numpy as np, pandas as pd
from PIL import Image
from ...errors import UserError
from ...files import check_new_file
from .staging import _first, _frame, _images_dir, _map, _publish, _staging

__all__ = ['FASHION_MNIST_CLASSES', 'FASHION_MNIST_DIR', 'read_idx', 'convert_fashion_mnist']

FASHION_MNIST_CLASSES = ('T-shirt', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag',
                         'Ankle boot')
FASHION_MNIST_DIR = Path('/usr/share/datasets/fashion-mnist')    # Debian's dataset-fashion-mnist
_IDX_TYPES = {0x08: np.uint8}

def read_idx(path) -> np.ndarray:
    "The array in an IDX file (MNIST's format: big-endian magic `0 0 type ndim`, dimensions, data), gzipped or not."
    path = Path(path)
    if not path.is_file(): raise UserError(f"{path}: IDX file not found")
    try:
        with (gzip.open if path.suffix == '.gz' else open)(path, 'rb') as f: raw = f.read()
    except (OSError, EOFError) as e: raise UserError(f"{path}: cannot read ({e})") from None
    if len(raw) < 4 or raw[:2] != b'\0\0' or raw[2] not in _IDX_TYPES:
        raise UserError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4+4*i:8+4*i], 'big') for i in range(ndim))
    start = 4 + 4*ndim
    if len(raw) - start != int(np.prod(dims)):
        raise UserError(f"{path}: {len(raw)-start} data bytes for dimensions {dims}; the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=_IDX_TYPES[raw[2]], offset=start).reshape(dims)

def convert_fashion_mnist(root, out_csv, train_subset:int|None=None, seed:int=0, images=None, num_workers:int=0,
                          overwrite:bool=False) -> pd.DataFrame:
    """Write Fashion-MNIST (the four IDX files `train-images-idx3-ubyte.gz` … `t10k-labels-idx1-ubyte.gz` in `root`, as
    Debian's `dataset-fashion-mnist` installs them in `FASHION_MNIST_DIR`) as a noisy-label CSV at `out_csv` and 28×28
    grayscale PNGs `<images>/<split>/<index>.png`. Train → train, t10k → test. `train_subset`: keep that many training
    images, the same number of each class (seeded)."""
    root, out_csv = Path(root), check_new_file(out_csv, overwrite)
    if not root.is_dir():
        raise UserError(f"{root}: Fashion-MNIST folder not found (Debian: apt-get install dataset-fashion-mnist)")
    dest = _images_dir(out_csv, images, (root,), overwrite)
    parts = []
    for split, stem in (('train', 'train'), ('test', 't10k')):
        x, y = read_idx(root/f'{stem}-images-idx3-ubyte.gz'), read_idx(root/f'{stem}-labels-idx1-ubyte.gz')
        if x.ndim != 3 or y.shape != (len(x),):
            raise UserError(f"{root}: {stem} images {x.shape} and labels {y.shape} do not match")
        if (bad := y >= len(FASHION_MNIST_CLASSES)).any():
            raise UserError(f"{root}: {stem} label #{_first(bad)} is {y[_first(bad)]}, not in 0..9")
        keep = np.arange(len(y))
        if split == 'train' and train_subset is not None: keep = _balanced_subset(y, train_subset, seed, root)
        parts.append((split, x, keep, [FASHION_MNIST_CLASSES[l] for l in y[keep]]))
    with _staging(dest) as tmp:
        for split, x, keep, _ in parts:
            (tmp/split).mkdir()
            _map(lambda i: Image.fromarray(x[i]).save(tmp/split/f'{i:05d}.png'), keep, num_workers)
        base = Path(os.path.relpath(dest, out_csv.parent)).as_posix()
        df = _frame(((f'{base}/{s}/{i:05d}.png', l, s) for s, _, keep, labs in parts for i, l in zip(keep, labs)),
                    FASHION_MNIST_CLASSES)
        _publish(tmp, dest, out_csv, df)
    return df

def _balanced_subset(y:np.ndarray, n:int, seed:int, root) -> np.ndarray:
    "Sorted indices of `n` items of `y`, `n / classes` drawn at random from each class."
    k = len(FASHION_MNIST_CLASSES)
    if n < k or n % k or n // k > np.bincount(y, minlength=k).min():
        raise UserError(f"--train-subset {n}: give a multiple of {k} of at most {k*np.bincount(y, minlength=k).min()} "
                        f"(per class: {root})")
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), n//k, replace=False) for c in range(k)]))
