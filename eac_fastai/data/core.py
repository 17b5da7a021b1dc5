"""The noisy-label CSV and the fastai DataBlock that reads it.

CSV format: one row per image, columns `image` (path relative to the image root, by default the
CSV's folder), `label` (the given, possibly noisy, class name), `split` (`train`, `valid` or `test`)
and optionally `clean_label` (the true class name, when known).

`label_dataloaders(..., cache=True)` decodes every image once, through the DataBlock's own item transforms, and
keeps them in memory as one uint8 tensor per split (`CachedImages`): the batches are identical, without the
per-epoch decoding."""
import hashlib
from csv import reader as csv_rows
from pathlib import Path
import numpy as np, pandas as pd, torch
from PIL import Image, ImageOps
import fastai.callback.data  # noqa: F401  DataBlock.weighted_dataloaders
from fastai.callback.data import WeightedDL
from fastai.data.block import DataBlock, CategoryBlock
from fastai.data.core import DataLoaders, TfmdDL
from fastai.data.transforms import CategoryMap, ColSplitter, IntToFloatTensor, Normalize, ToTensor
from fastai.torch_core import TensorCategory, TensorImage
from fastai.vision.augment import Resize
from fastai.vision.core import PILImage, imagenet_stats
from fastai.vision.data import ImageBlock
from ..errors import UserError

__all__ = ['COLUMNS', 'CLEAN', 'SPLITS', 'label_csv_problems', 'read_label_csv', 'check_dataset', 'imbalance_warning',
           'split_problems', 'label_frame', 'image_problem', 'image_problems', 'load_rgb', 'noisy_label_block',
           'class_balanced_weights', 'CachedImages', 'label_dataloaders', 'inference_dataloaders', 'train_noise_rate']

COLUMNS, CLEAN, SPLITS = ('image', 'label', 'split'), 'clean_label', ('train', 'valid', 'test')

def _rows(mask) -> str:
    "CSV line numbers (header = line 1) of the first rows where `mask` holds."
    lines = [str(i+2) for i in mask[mask].index[:5]]
    return ', '.join(lines) + (' …' if mask.sum() > 5 else '')

def _problems_error(where, problems:list[str]) -> UserError:
    "One `UserError` listing every problem found in `where`."
    if len(problems) == 1: return UserError(f"{where}: {problems[0]}")
    return UserError(f"{where}: {len(problems)} problems:\n" + '\n'.join(f"  - {p}" for p in problems))

def label_csv_problems(df:pd.DataFrame, classes) -> list[str]:
    """Every problem of a label frame's rows against the class vocabulary `classes`: empty cells, unknown splits and
    labels, repeated images."""
    problems = []
    for col in COLUMNS:
        if (empty := df[col].str.strip() == '').any(): problems.append(f"empty `{col}` on line(s) {_rows(empty)}")
    if (bad := ~df.split.isin(SPLITS)).any():
        problems.append(f"`split` must be one of {', '.join(SPLITS)}; line(s) {_rows(bad)} have "
                        f"{sorted(set(df.split[bad]))[:3]}")
    for col in ['label'] + ([CLEAN] if CLEAN in df.columns else []):
        if (spaced := (df[col] != df[col].str.strip()) & (df[col].str.strip() != '')).any():
            problems.append(f"`{col}` on line(s) {_rows(spaced)} has spaces around the class name "
                            f"({', '.join(map(repr, sorted(set(df[col][spaced]))[:3]))}), which would make it a class "
                            "of its own; remove the spaces")
        bad = ~df[col].isin(classes) & (df[col].str.strip() != '') & ~spaced
        if bad.any(): problems.append(f"`{col}` on line(s) {_rows(bad)} not among the classes {classes} "
                                      f"(found {sorted(set(df[col][bad]))[:3]}); fix the CSV or data.classes")
    if (dup := df.image.duplicated(keep=False) & (df.image.str.strip() != '')).any():
        problems.append(f"{df.image[dup].nunique()} image(s) listed more than once, on line(s) {_rows(dup)} "
                        f"(e.g. {df.image[dup].iloc[0]}); keep one row per image")
    return problems

def _read_csv_frame(path:Path) -> pd.DataFrame:
    "The CSV as strings, with its required columns and at least one row (a `UserError` otherwise)."
    if not path.is_file():
        raise UserError(f"{path}: label CSV not found" + (" (it is a folder)" if path.is_dir() else ""))
    try: df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as e:
        raise UserError(f"{path}: cannot parse as CSV ({str(e).splitlines()[0]})") from None
    if not isinstance(df.index, pd.RangeIndex):          # pandas took the extra leading fields as an index
        with open(path, newline='', encoding='utf-8') as f: rows = list(csv_rows(f))
        long = [str(i) for i, row in enumerate(rows, 1) if len(row) > len(rows[0])]
        raise UserError(f"{path}: cannot parse as CSV (line(s) {', '.join(long[:5])}{' …' if len(long) > 5 else ''} "
                        f"have more fields than the header's {len(rows[0])}; quote values that hold commas)")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing: raise UserError(f"{path}: missing column(s) {', '.join(missing)}; need {', '.join(COLUMNS)} "
                                f"(+ optional {CLEAN})")
    if df.empty: raise UserError(f"{path}: has a header but no rows")
    return df

def _classes(df:pd.DataFrame, classes=None) -> list[str]:
    """`classes`, or the sorted given labels found (without spaces around them: those are reported as problems); a
    `UserError` if a class is listed twice."""
    if classes is None: classes = sorted(set(df.label.str.strip()) - {''})
    classes = list(classes)
    if dup := sorted({c for c in classes if classes.count(c) > 1}):
        raise UserError(f"data.classes lists {dup} more than once")
    return classes

def read_label_csv(path, classes=None) -> tuple[pd.DataFrame, list[str]]:
    """Read and check a noisy-label CSV (a `UserError` lists every problem); returns it and the class vocabulary
    (`classes`, or the sorted labels found)."""
    df = _read_csv_frame(Path(path))
    classes = _classes(df, classes)
    if problems := label_csv_problems(df, classes): raise _problems_error(path, problems)
    return df, classes

def check_dataset(csv, root=None, classes=None, valid_split:str='valid') -> tuple[pd.DataFrame, list[str], list[str]]:
    """Every problem of a dataset at once: CSV rows, splits, classes and every image (decoded completely); the number
    of images per class (rows) and split (columns); and warnings: the same pixels in two splits. A `UserError` when the
    CSV cannot be read as a label CSV at all."""
    df = _read_csv_frame(Path(csv))
    classes = _classes(df, classes)
    root = Path(csv).parent if root is None else Path(root)
    listed = df[df.image.str.strip() != '']
    scans = listed.image.map(lambda p: _scan_image(root/p))
    problems = (label_csv_problems(df, classes) + split_problems(df, classes, valid_split)
                + _image_messages(listed, root, scans.str[0]))
    counts = pd.crosstab(df.label, df.split).reindex(index=classes,
                                                     columns=[s for s in SPLITS if (df.split == s).any()], fill_value=0)
    return counts, problems, _leak_warnings(listed, scans.str[1])

def _scan_image(path:Path, decode:bool=True) -> tuple[str, str|None]:
    """`image_problem(path, decode)` and, when decoded, a digest of the pixels (else None)."""
    if not path.is_file(): return 'missing', None
    try:
        with Image.open(path) as im:
            if not decode: im.verify(); return '', None
            im.load()
            return '', hashlib.blake2b(f'{im.mode}{im.size}'.encode() + im.tobytes(), digest_size=16).hexdigest()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError): return 'unreadable', None

def _leak_warnings(df:pd.DataFrame, digests:pd.Series) -> list[str]:
    "A warning when the same decoded pixels appear under two splits (a test image also seen in training), with lines."
    d = df.assign(digest=digests).dropna(subset=['digest'])
    groups = [g for _, g in d.groupby('digest') if g.split.nunique() > 1]
    if not groups: return []
    shown = '; '.join(' = '.join(f"line {i+2} ({r.split}: {r.image})" for i, r in g.iterrows()) for g in groups[:3])
    return [f"{len(groups)} image(s) appear with the same pixels in more than one split, e.g. {shown}"
            f"{' …' if len(groups) > 3 else ''}: an evaluation image seen in training inflates accuracy; "
            "keep each image in one split"]

def imbalance_warning(counts:pd.DataFrame, sampler:str='shuffle', ratio:float=10.) -> str|None:
    """A warning when the largest training class has at least `ratio` times the images of the smallest (`counts`: as
    `check_dataset` returns them), unless `sampler` is already `balanced`."""
    if 'train' not in counts or sampler == 'balanced': return None
    n = counts['train'][counts['train'] > 0]
    if len(n) < 2 or n.max() < ratio*n.min(): return None
    return (f"the training classes are imbalanced: {n.idxmax()} has {n.max()} images, {n.idxmin()} {n.min()} "
            f"({n.max()/n.min():.0f}:1); `data.sampler: balanced` draws every class equally often (as the AffectNet "
            "recipes do), or report per-class accuracy beside the overall one")

def split_problems(df:pd.DataFrame, classes, valid_split:str='valid') -> list[str]:
    "Splits with no rows, and classes with no training image."
    problems = [f"no rows with split={s}; add some or set data.valid_split"
                for s in ('train', valid_split) if not (df.split == s).any()]
    if empty := [c for c in classes if not ((df.split == 'train') & (df.label == c)).any()]:
        problems.append(f"class(es) {', '.join(empty)} have no training images; "
                        "drop them from data.classes or add images")
    return problems

def image_problem(path, decode:bool=False) -> str:
    """'missing', 'unreadable' or '' for a file that opens and verifies as an image (`decode`: decodes completely, which
    also finds truncated files)."""
    return _scan_image(Path(path), decode)[0]

def image_problems(df:pd.DataFrame, root, decode:bool=False) -> list[str]:
    "The rows of `df` whose image is missing under `root` or is not a readable image (`decode`: decoded completely)."
    return _image_messages(df, Path(root), df.image.map(lambda p: image_problem(Path(root)/p, decode)))

def _image_messages(df:pd.DataFrame, root:Path, problem:pd.Series) -> list[str]:
    "The messages for the rows of `df` whose `problem` (from `image_problem`) is 'missing' or 'unreadable'."
    problems = []
    missing, broken = problem == 'missing', problem == 'unreadable'
    if missing.any():
        problems.append(f"{missing.sum()} image(s) not found under {root}, e.g. line {missing[missing].index[0]+2}: "
                        f"{df.image[missing].iloc[0]} (lines {_rows(missing)}); "
                        "set data.root to the folder the `image` paths are relative to")
    if broken.any():
        problems.append(f"{broken.sum()} file(s) are not readable images (corrupt or truncated), "
                        f"e.g. line {broken[broken].index[0]+2}: {df.image[broken].iloc[0]} (lines {_rows(broken)}); "
                        "replace or remove those rows")
    return problems

_WIDE_MODES = ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I', 'F')

def load_rgb(o) -> Image.Image:
    """The 8-bit RGB image of a label-frame row (its `path`), a path, or a PIL image (what `predict` and `test_dl` are
    given), upright as its EXIF orientation says (phone photos): grayscale, palette and alpha images converted as PIL
    converts them; 16-bit images (and 32-bit ones above 255) scaled by 1/257."""
    o = o['path'] if isinstance(o, (pd.Series, dict)) else o
    try:
        im = o if isinstance(o, Image.Image) else Image.open(o)
        if im.getexif().get(0x0112, 1) != 1: im = ImageOps.exif_transpose(im)   # no copy of the upright ones
        if im.mode in _WIDE_MODES:
            a = np.asarray(im, dtype=np.float64)
            if im.mode.startswith('I;16') or a.max() > 255: a = a/257
            im = Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8))
        return im.convert('RGB')
    except (OSError, SyntaxError, ValueError) as e:
        # e.g. truncated after the start-up check, which only verifies headers
        raise UserError(f"{o}: cannot decode this image ({e}); "
                        "replace it or remove its row (eac-fastai check-data finds them all)") from None

def _label(row): return row['label']

def noisy_label_block(classes, img_size:int=224, stats=imagenet_stats) -> DataBlock:
    """DataBlock over a label frame with `path`, `label` and `is_valid` columns: squish-resize to `img_size` (bilinear),
    explicit `Normalize`."""
    return DataBlock(blocks=(ImageBlock, CategoryBlock(vocab=list(classes), sort=False)),
                     get_x=load_rgb, get_y=_label,
                     splitter=ColSplitter('is_valid'), item_tfms=Resize(img_size, method='squish'),
                     batch_tfms=Normalize.from_stats(*stats))

class CachedImages(torch.utils.data.Dataset):
    """The images of label frame `items` (columns `path`, `label`) decoded once with the DataBlock's item transforms
    (RGB, squish-resize to `img_size`, to tensor) and held as one uint8 tensor, with their class indices in `vocab`."""
    def __init__(self, items:pd.DataFrame, vocab, img_size:int):
        self.items, self.vocab = items, CategoryMap(list(vocab), sort=False)
        resize, to_tensor = Resize(img_size, method='squish'), ToTensor()
        self.x = (torch.stack([to_tensor(resize(PILImage.create(load_rgb(p)))) for p in items.path]) if len(items)
                  else torch.zeros(0, 3, img_size, img_size, dtype=torch.uint8))
        self.y = torch.tensor(items.label.map(self.vocab.o2i).to_numpy(dtype='int64'))
    def __len__(self): return len(self.y)
    def __getitem__(self, i): return TensorImage(self.x[i]), TensorCategory(self.y[i])
    def new_empty(self): return type(self)(self.items.iloc[:0], self.vocab, self.x.shape[-1])

def _cached_dataloaders(df, classes, img_size, stats, bs, num_workers, drop_last, device, balanced) -> DataLoaders:
    "`label_dataloaders` over `CachedImages`: the same batches, each image decoded once."
    train, valid = (CachedImages(df[df.is_valid == v].reset_index(drop=True), classes, img_size) for v in (False, True))
    kw = dict(bs=bs, num_workers=num_workers, device=device,
              after_batch=[IntToFloatTensor(), Normalize.from_stats(*stats)])
    if balanced: train_dl = WeightedDL(train, wgts=class_balanced_weights(train.items.label).to_numpy(), shuffle=True,
                                       drop_last=drop_last, **kw)
    else: train_dl = TfmdDL(train, shuffle=True, drop_last=drop_last, **kw)
    return DataLoaders(train_dl, TfmdDL(valid, **kw), device=device)

def label_frame(csv, root=None, classes=None, valid_split:str='valid', check:bool=True,
                decode:bool=False) -> tuple[pd.DataFrame, list[str]]:
    """The CSV's `train` and `valid_split` rows, checked (a `UserError` lists every problem; `check`: their images too,
    `decode`: decoded completely), with `is_valid` and `path` columns; and the class vocabulary."""
    df, classes = read_label_csv(csv, classes)
    root = Path(csv).parent if root is None else Path(root)
    used = df[df.split.isin(['train', valid_split])]
    if problems := split_problems(df, classes, valid_split) + (image_problems(used, root, decode) if check else []):
        raise _problems_error(csv, problems)
    return (used.assign(is_valid=lambda d: d.split == valid_split).reset_index(drop=True)
            .assign(path=lambda d: [str(root/p) for p in d.image]), classes)

def class_balanced_weights(labels:pd.Series, train:pd.Series|None=None) -> pd.Series:
    """Sampling weight of each row ∝ 1 / the number of training rows (`train` mask, default all) of its class; 0 off
    `train`."""
    train = pd.Series(True, index=labels.index) if train is None else train
    return (1 / labels.map(labels[train].value_counts())).where(train, 0.)

def label_dataloaders(csv, root=None, classes=None, valid_split:str='valid', img_size:int=224, bs:int=32,
                      num_workers:int=0, drop_last:bool=False, stats=imagenet_stats, device=None, check:bool=True,
                      balanced:bool=False, cache:bool=False):
    """DataLoaders training on the CSV's `train` rows and validating on its `valid_split` rows. `balanced`: each epoch
    draws as many training images as there are, with replacement, each class equally often (fastai's `WeightedDL`).
    `cache`: decode every image once and keep it in memory (`CachedImages`; N×3×`img_size`² bytes)."""
    df, classes = label_frame(csv, root, classes, valid_split, check, decode=cache)
    if cache: return _cached_dataloaders(df, classes, img_size, stats, bs, num_workers, drop_last, device, balanced)
    block, kw = noisy_label_block(classes, img_size, stats), dict(bs=bs, num_workers=num_workers, drop_last=drop_last,
                                                                  device=device)
    if not balanced: return block.dataloaders(df, **kw)
    return block.weighted_dataloaders(df, wgts=class_balanced_weights(df.label, ~df.is_valid).to_numpy(), **kw)

def inference_dataloaders(dls) -> DataLoaders:
    """DataLoaders with the DataBlock pipeline of `dls` and no items, for `learn.export`: the exported learner's
    `predict` and `test_dl` take image paths or PIL images, decoded as in training (also after training on
    `CachedImages`)."""
    if not isinstance(dls.train_ds, CachedImages): return dls.new_empty()
    norm = next(t for t in dls.after_batch.fs if isinstance(t, Normalize))
    stats = ([float(v) for v in norm.mean.flatten()], [float(v) for v in norm.std.flatten()])
    rows = pd.concat([dls.train_ds.items.iloc[:1], dls.valid_ds.items.iloc[:1]]).reset_index(drop=True)
    block = noisy_label_block(dls.vocab, dls.train_ds.x.shape[-1], stats)
    return block.dataloaders(rows.assign(is_valid=[False, True]), bs=dls.valid.bs, device=dls.device).new_empty()

def train_noise_rate(dls) -> float|None:
    """Share of the training images whose given label differs from their `clean_label`, among those with one (None: no
    row has one)."""
    items = dls.train_ds.items
    if not isinstance(items, pd.DataFrame) or CLEAN not in items.columns: return None
    known = items[items[CLEAN].fillna('') != '']                # an empty clean_label means "not known"
    return float((known.label != known[CLEAN]).mean()) if len(known) else None
