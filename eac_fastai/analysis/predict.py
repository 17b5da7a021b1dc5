"""Inference: class probabilities for image files, from a run directory, an exported learner or an ONNX export.

A run directory is rebuilt from its `recipe.yaml` and `models/<checkpoint>.pth` (loaded with `weights_only`: nothing in
it can run code), on a DataBlock made from one image, so the training data need not be there. An `export.pkl`
(`learn.export`, written by every run, without the training callbacks) is a pickle: `load_learner` runs code from it,
so `inference_learner` loads one only with `trust_pickle=True` (`--trust-pickle`): for exports you made. An ONNX file
(`export_run_onnx`, `eac-fastai export RUN --format onnx`) holds no code and runs with ONNX Runtime. Every way an image
is read as in training: RGB (grayscale, palette and RGBA images converted, 16-bit images scaled to 8 bits),
squish-resized, normalised."""
import tempfile
from pathlib import Path
from typing import Callable
import numpy as np, pandas as pd, torch
from PIL import Image
from fastai.learner import load_learner
from ..data.convert import IMAGE_EXTS
from ..data.core import image_problem, noisy_label_block
from ..data.video import VIDEO_EXTS, is_video, video_problem
from ..errors import UserError
from ..models.onnx import OnnxClassifier, export_onnx
from .outputs import outputs
from ..training.build import recipe_dataloaders
from ..training.runs import load_run, predictions, read_run_classes, read_run_recipe

__all__ = ['image_files', 'inference_learner', 'classifier', 'predict_images', 'predict_onnx', 'export_run_onnx',
           'evaluate_run']

def image_files(inputs, videos:bool=False) -> list[Path]:
    """The image files named by `inputs` (files, or folders searched recursively for `IMAGE_EXTS`, and `VIDEO_EXTS`
    when `videos`), in order, each once, checked readable."""
    exts = (*IMAGE_EXTS, *(VIDEO_EXTS if videos else ()))
    files = []
    for p in map(Path, inputs):
        if p.is_dir():
            found = sorted(f for f in p.rglob('*')
                           if f.suffix.lower() in exts and f.is_file() and not f.name.startswith('.'))
            if not found: raise UserError(f"{p}: no image{' or video' if videos else ''} files ({', '.join(exts)}) "
                                          "in this folder")
            files += found
        elif p.exists(): files.append(p)
        else: raise UserError(f"{p}: no such image file or folder")
    files = list(dict.fromkeys(files))                         # a file named twice (itself and its folder): once
    if not videos and (vids := [str(f) for f in files if is_video(f)]):
        raise UserError(f"{', '.join(vids[:3])}: a video; pass --faces to classify the faces in its frames")
    problem = lambda f: video_problem(f) if is_video(f) else image_problem(f)
    if bad := [f"{f} ({why})" for f in files if (why := problem(f))]:
        raise UserError(f"{len(bad)} of {len(files)} file(s) are not readable images or videos: {', '.join(bad[:10])}"
                        f"{' …' if len(bad) > 10 else ''}; remove or replace them, or give the other files")
    return files

def inference_learner(source, files=None, checkpoint:str='last', bs:int=64, trust_pickle:bool=False):
    """A learner for images like `files` (default: any): rebuilt from run directory `source` (its `checkpoint`), or
    loaded from the export file `source` when `trust_pickle` (a pickle can run code when loaded)."""
    source = Path(source)
    if source.is_file():
        if not trust_pickle:
            raise UserError(f"{source}: an exported learner is a pickle, which can run code when loaded; give its run "
                            f"folder ({source.parent}) instead, or pass --trust-pickle if you made this file yourself")
        try: return load_learner(source, cpu=not torch.cuda.is_available())
        except Exception as e:
            raise UserError(f"{source}: not a learner exported by fastai ({type(e).__name__}: {e})") from None
    if not source.is_dir(): raise UserError(f"{source}: no such run directory or export file")
    r, classes = read_run_recipe(source), read_run_classes(source)
    with tempfile.TemporaryDirectory() as d:                   # the DataLoaders are made on one image
        if not files: Image.new('RGB', (r.data.img_size,)*2).save(Path(d)/'blank.png')
        example = files[0] if files else Path(d)/'blank.png'
        dls = _image_dls(classes, r.data.img_size, (list(r.data.mean), list(r.data.std)), example, bs)
    return load_run(source, checkpoint, dls=dls)[1]

def classifier(source, checkpoint:str='last', bs:int=64, trust_pickle:bool=False, tta:str|None=None) -> Callable:
    """`classify(files)` → `predict_images`' frame, with the model of a run folder, an export (`trust_pickle`) or an
    ONNX file `source`, loaded now: a bad source is reported before any image is read."""
    if Path(source).suffix.lower() == '.onnx':
        model = OnnxClassifier(source)
        return lambda files: predict_onnx(model, files, bs, tta)
    learn = inference_learner(source, None, checkpoint, bs, trust_pickle)
    return lambda files: predict_images(learn, files, bs, tta)

def _image_dls(classes, img_size:int, stats, example, bs:int, device=None):
    """DataLoaders decoding images as in training (RGB, squish-resize, Normalize by `stats`), made from one `example`,
    on `device` (default: the GPU when there is one)."""
    frame = pd.DataFrame(dict(path=[str(example)]*2, label=classes[0], is_valid=[False, True]))
    return noisy_label_block(classes, img_size, stats).dataloaders(
        frame, bs=bs, device=device or ('cuda' if torch.cuda.is_available() else 'cpu'))

def _prediction_frame(files, probs, vocab) -> pd.DataFrame:
    "One row per image: `image`, `pred` (the most probable class), `prob_<class>` in the model's order."
    probs = np.asarray(probs)
    out = pd.DataFrame(dict(image=[str(f) for f in files], pred=[vocab[i] for i in probs.argmax(1).tolist()]))
    return pd.concat([out, pd.DataFrame(probs, columns=[f'prob_{c}' for c in vocab])], axis=1)

def predict_images(learn, files, bs:int=64, tta:str|None=None) -> pd.DataFrame:
    """One row per image: `image`, `pred` (the most probable class) and `prob_<class>` for every class,
    in the model's order; `tta='flip'`: probabilities averaged with the mirrored image's."""
    probs, _ = outputs(learn.model, learn.dls.test_dl([str(f) for f in files], bs=bs), tta)
    return _prediction_frame(files, probs.numpy(), list(learn.dls.vocab))

def predict_onnx(model, files, bs:int=64, tta:str|None=None) -> pd.DataFrame:
    """`predict_images` with an ONNX file from `eac-fastai export` (its path or `OnnxClassifier`), run by ONNX Runtime:
    images decoded and resized as in training, its own Normalize and softmax."""
    model = model if isinstance(model, OnnxClassifier) else OnnxClassifier(model)
    dl = _image_dls(model.classes, model.img_size, ([0.]*3, [1.]*3), files[0], bs, 'cpu').test_dl(list(map(str, files)))
    if tta not in (None, 'flip'): raise ValueError(f"tta {tta!r}: choose flip")
    probs = [(model(xb) + model(xb.flip(-1)))/2 if tta else model(xb) for xb, *_ in dl]
    return _prediction_frame(files, np.concatenate(probs), model.classes)

def export_run_onnx(run, path, checkpoint:str='last') -> Path:
    """Export the model of run folder `run` (its `checkpoint`) to the ONNX file `path` (`export_onnx`: Normalize and
    softmax folded in, the class names in its metadata); the run's data need not be there."""
    from .. import __version__
    r, run = read_run_recipe(run), Path(run)
    learn = inference_learner(run, None, checkpoint)
    return export_onnx(learn.model, path, list(learn.dls.vocab), r.data.img_size, r.data.mean, r.data.std,
                       method=r.method, arch=r.model.arch, checkpoint=checkpoint, run=run.resolve(),
                       eac_fastai=__version__)

def evaluate_run(run, split:str|None=None, checkpoint:str='last', tta:str|None=None) -> pd.DataFrame:
    """The predictions of run folder `run`'s model on an evaluation split of its data (default: the recipe's
    `data.valid_split`), optionally with test-time augmentation: `predictions`' columns, the given label in `label`."""
    r = read_run_recipe(run)
    if split is not None: r = r.model_copy(update=dict(data=r.data.model_copy(update=dict(valid_split=split))))
    return predictions(load_run(run, checkpoint, dls=recipe_dataloaders(r))[1], tta=tta)
