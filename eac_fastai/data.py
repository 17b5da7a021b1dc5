"""The noisy-label CSV and the fastai DataBlock that reads it.

CSV format: one row per image, columns `image` (path relative to the image root, by default the
CSV's folder), `label` (the given, possibly noisy, class name), `split` (`train`, `valid` or `test`)
and optionally `clean_label` (the true class name, when known).

`label_dataloaders(..., cache=True)` decodes every image once, through the DataBlock's own item transforms, and
keeps them in memory as one uint8 tensor per split (`CachedImages`): the batches are identical, without the
per-epoch decoding."""
from pathlib import Path
import numpy as np, pandas as pd, torch
from PIL import Image
import fastai.callback.data  # noqa: F401  DataBlock.weighted_dataloaders
from fastai.callback.data import WeightedDL
from fastai.data.block import DataBlock, CategoryBlock
from fastai.data.core import DataLoaders, TfmdDL
from fastai.data.transforms import CategoryMap, ColSplitter, IntToFloatTensor, Normalize, ToTensor
from fastai.torch_core import TensorCategory, TensorImage
from fastai.vision.augment import Resize
from fastai.vision.core import PILImage, imagenet_stats
from fastai.vision.data import ImageBlock
from .errors import UserError

__all__ = ['COLUMNS', 'CLEAN', 'SPLITS', 'read_label_csv', 'image_problem', 'check_images', 'load_rgb', 'noisy_label_block', 'class_balanced_weights',
           'CachedImages', 'label_dataloaders', 'inference_dataloaders', 'train_noise_rate']

COLUMNS, CLEAN, SPLITS = ('image', 'label', 'split'), 'clean_label', ('train', 'valid', 'test')

def _rows(mask) -> str:
    "CSV line numbers (header = line 1) of the first rows where `mask` holds."
    lines = [str(i+2) for i in mask[mask].index[:5]]
    return ', '.join(lines) + (' …' if mask.sum() > 5 else '')

def read_label_csv(path, classes=None) -> tuple[pd.DataFrame, list[str]]:
    "Read and check a noisy-label CSV; returns it and the class vocabulary (`classes`, or the sorted labels found)."
    path = Path(path)
    if not path.is_file(): raise UserError(f"{path}: label CSV not found" + (" (it is a folder)" if path.is_dir() else ""))
    try: df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as e:
        raise UserError(f"{path}: cannot parse as CSV ({str(e).splitlines()[0]})") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing: raise UserError(f"{path}: missing column(s) {', '.join(missing)}; need {', '.join(COLUMNS)} (+ optional {CLEAN})")
    if df.empty: raise UserError(f"{path}: has a header but no rows")
    for col in COLUMNS:
        if (empty := df[col].str.strip() == '').any(): raise UserError(f"{path}: empty `{col}` on line(s) {_rows(empty)}")
    if (bad := ~df.split.isin(SPLITS)).any():
        raise UserError(f"{path}: `split` must be one of {', '.join(SPLITS)}; line(s) {_rows(bad)} have {sorted(set(df.split[bad]))[:3]}")
    label_cols = ['label'] + ([CLEAN] if CLEAN in df.columns else [])
    if classes is None: classes = sorted(set().union(*(set(df[c]) for c in label_cols)) - {''})
    classes = list(classes)
    if dup := sorted({c for c in classes if classes.count(c) > 1}): raise UserError(f"data.classes lists {dup} more than once")
    for col in label_cols:
        bad = ~df[col].isin(classes) & ((df[col] != '') if col == CLEAN else True)
        if bad.any(): raise UserError(f"{path}: `{col}` on line(s) {_rows(bad)} not among the classes {classes} "
                                      f"(found {sorted(set(df[col][bad]))[:3]}); fix the CSV or data.classes")
    return df, classes

def image_problem(path) -> str:
    "'missing', 'unreadable' or '' for a file that opens and verifies as an image."
    path = Path(path)
    if not path.is_file(): return 'missing'
    try:
        with Image.open(path) as im: im.verify()
        return ''
    except (OSError, SyntaxError, ValueError): return 'unreadable'

def check_images(df:pd.DataFrame, root, csv='CSV'):
    "Raise a `UserError` naming the first rows of `df` whose image is missing under `root`, or is not a readable image."
    root = Path(root)
    problem = df.image.map(lambda p: image_problem(root/p))
    missing, broken = problem == 'missing', problem == 'unreadable'
    if missing.any():
        first = df.image[missing].iloc[0]
        raise UserError(f"{csv}: {missing.sum()} image(s) not found under {root}, e.g. line {missing[missing].index[0]+2}: {first} "
                        f"(lines {_rows(missing)}); set data.root to the folder the `image` paths are relative to")
    if broken.any():
        raise UserError(f"{csv}: {broken.sum()} file(s) are not readable images, e.g. line {broken[broken].index[0]+2}: "
                        f"{df.image[broken].iloc[0]} (lines {_rows(broken)}); replace or remove those rows")

_WIDE_MODES = ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I', 'F')

def load_rgb(o) -> Image.Image:
    """The 8-bit RGB image of a label-frame row (its `path`), a path, or a PIL image (what `predict` and `test_dl` are given):
    grayscale, palette and alpha images converted as PIL converts them; 16-bit images (and 32-bit ones above 255) scaled by 1/257."""
    o = o['path'] if isinstance(o, (pd.Series, dict)) else o
    im = o if isinstance(o, Image.Image) else Image.open(o)
    if im.mode in _WIDE_MODES:
        a = np.asarray(im, dtype=np.float64)
        if im.mode.startswith('I;16') or a.max() > 255: a = a/257
        im = Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8))
    return im.convert('RGB')

def _label(row): return row['label']

def noisy_label_block(classes, img_size:int=224, stats=imagenet_stats) -> DataBlock:
    "DataBlock over a label frame with `path`, `label` and `is_valid` columns: squish-resize to `img_size` (bilinear), explicit `Normalize`."
    return DataBlock(blocks=(ImageBlock, CategoryBlock(vocab=list(classes), sort=False)),
                     get_x=load_rgb, get_y=_label,
                     splitter=ColSplitter('is_valid'), item_tfms=Resize(img_size, method='squish'),
                     batch_tfms=Normalize.from_stats(*stats))

class CachedImages(torch.utils.data.Dataset):
    """The images of label frame `items` (columns `path`, `label`) decoded once with the DataBlock's item transforms (RGB,
    squish-resize to `img_size`, to tensor) and held as one uint8 tensor, with their class indices in `vocab`."""
    def __init__(self, items:pd.DataFrame, vocab, img_size:int):
        self.items, self.vocab = items, CategoryMap(list(vocab), sort=False)
        resize, to_tensor = Resize(img_size, method='squish'), ToTensor()
        self.x = torch.stack([to_tensor(resize(PILImage.create(load_rgb(p)))) for p in items.path]) if len(items) else torch.zeros(0, 3, img_size, img_size, dtype=torch.uint8)
        self.y = torch.tensor(items.label.map(self.vocab.o2i).to_numpy(dtype='int64'))
    def __len__(self): return len(self.y)
    def __getitem__(self, i): return TensorImage(self.x[i]), TensorCategory(self.y[i])
    def new_empty(self): return type(self)(self.items.iloc[:0], self.vocab, self.x.shape[-1])

def _cached_dataloaders(df, classes, img_size, stats, bs, num_workers, drop_last, device, balanced) -> DataLoaders:
    "`label_dataloaders` over `CachedImages`: the same batches, each image decoded once."
    train, valid = (CachedImages(df[df.is_valid == v].reset_index(drop=True), classes, img_size) for v in (False, True))
    kw = dict(bs=bs, num_workers=num_workers, device=device, after_batch=[IntToFloatTensor(), Normalize.from_stats(*stats)])
    if balanced: train_dl = WeightedDL(train, wgts=class_balanced_weights(train.items.label).to_numpy(), shuffle=True, drop_last=drop_last, **kw)
    else: train_dl = TfmdDL(train, shuffle=True, drop_last=drop_last, **kw)
    return DataLoaders(train_dl, TfmdDL(valid, **kw), device=device)

def class_balanced_weights(labels:pd.Series, train:pd.Series|None=None) -> pd.Series:
    "Sampling weight of each row ∝ 1 / the number of training rows (`train` mask, default all) of its class; 0 off `train`."
    train = pd.Series(True, index=labels.index) if train is None else train
    return (1 / labels.map(labels[train].value_counts())).where(train, 0.)

def label_dataloaders(csv, root=None, classes=None, valid_split:str='valid', img_size:int=224, bs:int=32,
                      num_workers:int=0, drop_last:bool=False, stats=imagenet_stats, device=None, check:bool=True,
                      balanced:bool=False, cache:bool=False):
    """DataLoaders training on the CSV's `train` rows and validating on its `valid_split` rows. `balanced`: each epoch
    draws as many training images as there are, with replacement, each class equally often (fastai's `WeightedDL`).
    `cache`: decode every image once and keep it in memory (`CachedImages`; N×3×`img_size`² bytes)."""
    df, classes = read_label_csv(csv, classes)
    root = Path(csv).parent if root is None else Path(root)
    for split in ('train', valid_split):
        if not (df.split == split).any(): raise UserError(f"{csv}: no rows with split={split}; add some or set data.valid_split")
    df = df[df.split.isin(['train', valid_split])].assign(is_valid=lambda d: d.split == valid_split)
    if check: check_images(df, root, csv)
    df = df.reset_index(drop=True).assign(path=lambda d: [str(root/p) for p in d.image])
    empty = [c for c in classes if not (df.label[~df.is_valid] == c).any()]
    if empty: raise UserError(f"{csv}: class(es) {', '.join(empty)} have no training images; drop them from data.classes or add images")
    if cache: return _cached_dataloaders(df, classes, img_size, stats, bs, num_workers, drop_last, device, balanced)
    block, kw = noisy_label_block(classes, img_size, stats), dict(bs=bs, num_workers=num_workers, drop_last=drop_last, device=device)
    if not balanced: return block.dataloaders(df, **kw)
    return block.weighted_dataloaders(df, wgts=class_balanced_weights(df.label, ~df.is_valid).to_numpy(), **kw)

def inference_dataloaders(dls) -> DataLoaders:
    """DataLoaders with the DataBlock pipeline of `dls` and no items, for `learn.export`: the exported learner's `predict`
    and `test_dl` take image paths or PIL images, decoded as in training (also after training on `CachedImages`)."""
    if not isinstance(dls.train_ds, CachedImages): return dls.new_empty()
    norm = next(t for t in dls.after_batch.fs if isinstance(t, Normalize))
    stats = ([float(v) for v in norm.mean.flatten()], [float(v) for v in norm.std.flatten()])
    rows = pd.concat([dls.train_ds.items.iloc[:1], dls.valid_ds.items.iloc[:1]]).reset_index(drop=True)
    block = noisy_label_block(dls.vocab, dls.train_ds.x.shape[-1], stats)
    return block.dataloaders(rows.assign(is_valid=[False, True]), bs=dls.valid.bs, device=dls.device).new_empty()

def train_noise_rate(dls) -> float|None:
    "Share of the training images whose given label differs from their `clean_label`, when the CSV has one."
    items = dls.train_ds.items
    if not isinstance(items, pd.DataFrame) or CLEAN not in items.columns: return None
    return float((items.label != items[CLEAN]).mean())
