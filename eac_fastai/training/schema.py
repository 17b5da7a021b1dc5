"""The recipe schema: every section, key, type, default and check of a training recipe, as pydantic models.

Each method's section sits beside its callback (`eac_fastai.methods`) and each augmentation's beside its code
(`eac_fastai.data.augment`); `Recipe` joins them, one section per method in `METHODS`."""
import inspect
from typing import Literal
from pydantic import Field, create_model, field_validator, model_validator
from ..config import Section
from ..data.augment import BasicAug, Crop, Erasing, Flip
from ..methods import METHODS
from ..methods.base import flip_problem
from ..models.archs import ARCHS
from .loggers import LOGGERS

__all__ = ['DemoData', 'Data', 'Model', 'Augment', 'LRFind', 'EvalSubset', 'EarlyStop', 'Train', 'Recipe']

class DemoData(Section):
    "The built-in synthetic faces, generated under settings.ini's data dir on first use."
    n_train: int = Field(100, ge=1, description="training images per class")
    n_valid: int = Field(30, ge=1, description="validation images per class")
    n_test: int = Field(30, ge=1, description="test images per class")
    size: int = Field(64, ge=16, description="image side in pixels")
    noise: float = Field(0.3, ge=0, le=1, description="symmetric label-noise rate on the train split")
    seed: int = Field(0, description="seed of the images and the noise")

class Data(Section):
    csv: str|None = Field(None, description="noisy-label CSV (relative: under settings.ini's data dir)")
    root: str|None = Field(None, description="folder the CSV's image paths are relative to (default: the CSV's folder)")
    demo: DemoData|None = Field(None, description="use the built-in demo data instead of `csv`")
    classes: list[str]|None = Field(None, description="class vocabulary in model output order (default: sorted labels)")
    valid_split: Literal['valid', 'test'] = Field('valid', description="split evaluated after every epoch")
    img_size: int = Field(224, ge=8, description="side the images are squish-resized to (bilinear)")
    bs: int = Field(32, ge=1, description="batch size (per process when training in several)")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes decoding images")
    drop_last: bool = Field(False, description="drop the last incomplete training batch")
    sampler: Literal['shuffle', 'balanced'] = Field('shuffle', description="balanced: draw training images with "
                                                    "probability ∝ 1/class count, with replacement (AffectNet)")
    cache: bool = Field(False, description="decode every image once and keep it in memory (N×3×img_size² bytes): "
                        "the same batches, faster epochs")
    mean: tuple[float, float, float] = Field((0.485, 0.456, 0.406),
                                             description="Normalize mean per channel (ImageNet's)")
    std: tuple[float, float, float] = Field((0.229, 0.224, 0.225), description="Normalize std per channel (ImageNet's)")

    @field_validator('mean', 'std', mode='before')
    @classmethod
    def _per_channel(cls, v):
        if isinstance(v, (list, tuple)) and len(v) != 3:
            raise ValueError("give 3 values, one per RGB channel")
        return v

    @field_validator('std')
    @classmethod
    def _positive(cls, v):
        if not all(x > 0 for x in v): raise ValueError("values must be > 0 (Normalize divides by them)")
        return v

    @model_validator(mode='after')
    def _one_source(self):
        if (self.csv is None) == (self.demo is None): raise ValueError("set exactly one of data.csv and data.demo")
        return self

class Model(Section):
    arch: Literal[tuple(ARCHS)] = Field('resnet18', description="backbone (README: Backbones and pretrained weights)")
    weights: str|None = Field(None, description="pretrained backbone: a local file (relative: under settings.ini's "
                              "weights dir), or imagenet / a torchvision weights name such as IMAGENET1K_V1 (torch's "
                              "cache, downloaded once); null: from scratch")

    @model_validator(mode='after')
    def _torchvision_weights(self):
        from ..models.weights import is_torchvision_weights, torchvision_weights
        if is_torchvision_weights(self.weights):
            try: torchvision_weights(self.arch, self.weights)
            except ValueError as e: raise ValueError(f"model.weights={self.weights}: {e}") from None
        return self

class Augment(Section):
    erase: Erasing|None = Field(default_factory=Erasing, description="per-image random erasing after Normalize "
                                "(null: off); not given: off for method ac, which erases nothing")
    basic: BasicAug|None = Field(default_factory=BasicAug, description="the official 'basic aug': with probability p "
                                 "one of ops (null: off)")
    crop: Crop|None = Field(None, description="CIFAR-style padded random crop (null: off)")
    flip: Flip|None = Field(None, description="horizontal flip drawn apart from the basic aug, before it (null: off); "
                            "the supplementary's fair baseline and SCN: p 0.5; not for eac and ac, which mirror the "
                            "image themselves")

class LRFind(Section):
    start_lr: float = Field(1e-7, gt=0, description="first learning rate tried")
    end_lr: float = Field(10., gt=0, description="last learning rate tried")
    num_it: int = Field(100, ge=20, description="steps of the range test")
    suggestion: Literal['valley', 'slide', 'minimum', 'steep'] = Field(
        'valley', description="fastai suggestion used by train.lr: find")

    @model_validator(mode='after')
    def _range(self):
        if self.start_lr >= self.end_lr: raise ValueError(f"start_lr ({self.start_lr:g}) must be below end_lr "
                                                          f"({self.end_lr:g})")
        return self

class EvalSubset(Section):
    n: int = Field(2000, ge=1, description="evaluation images scored in the earlier epochs: a fixed subset, the same "
                   "number per class where the split allows")
    full_last: int = Field(5, ge=5, description="the last epochs scored on the whole evaluation split (at least 5, so "
                           "last-5 and final are whole-split figures)")
    seed: int = Field(0, description="seed of the subset's draw, apart from the recipe's seed: runs of every seed are "
                      "scored on the same images")

class EarlyStop(Section):
    monitor: Literal['accuracy', 'mean_class_accuracy', 'valid_loss'] = Field(
        'accuracy', description="the evaluation split's column of history.csv watched (and best.pth chosen on)")
    patience: int = Field(10, ge=1, description="epochs without improvement before training stops")
    min_delta: float = Field(0., ge=0, description="the smallest change counted as an improvement")

class Train(Section):
    epochs: int = Field(60, ge=1, description="training epochs; the evaluation split is scored after each")
    lr: float|Literal['find'] = Field(2e-4, description="peak/initial learning rate, "
                                      "or 'find' to use lr_find's suggestion")
    opt: Literal['adam', 'sgd', 'fastai_adam', 'fastai_sgd'] = Field(
        'adam', description="adam: torch.optim.Adam with coupled L2 decay (the paper's); sgd: torch, momentum 0.9; "
        "fastai_adam, fastai_sgd")
    wd: float = Field(1e-4, ge=0, description="weight decay")
    wd_bn_bias: bool = Field(True, description="decay BatchNorm weights and biases too "
                             "(false only with the fastai optimizers)")
    schedule: Literal['exp', 'cosine', 'constant', 'one_cycle', 'flat_cos'] = Field(
        'exp', description="exp: ×gamma per epoch (the paper's); cosine: torch's CosineAnnealingLR per epoch; "
        "constant; fastai's one_cycle or flat_cos")
    gamma: float = Field(0.9, gt=0, le=1, description="per-epoch decay of the exp schedule")
    pct_start: float|None = Field(None, gt=0, lt=1, description="warm-up share (one_cycle, default 0.25) or flat share "
                                  "(flat_cos, default 0.75)")
    precision: Literal['fp32', 'fp16', 'bf16'] = Field('fp32', description="fp16 or bf16: fastai's mixed precision "
                                                       "(CUDA only)")
    device: Literal['auto', 'cpu', 'cuda'] = Field('auto', description="auto: the GPU when there is one")
    channels_last: bool = Field(False, description="model in channels-last memory format (fastai's ChannelsLast): "
                                "faster convolutions on many CPUs and GPUs")
    resumable: bool = Field(True, description="write models/resume.pth (weights, optimizer, generators, method state) "
                            "every epoch for `eac-fastai train --resume`")
    memorisation: bool = Field(True, description="log flipped_as_given / flipped_as_clean each epoch (training images "
                               "whose label differs from clean_label)")
    eval_subset: EvalSubset|None = Field(None, description="score the evaluation split on a fixed subset except in the "
                                         "last epochs (cheaper epochs, training unchanged; history's eval_images says "
                                         "which); null: the whole split every epoch")
    accumulate: int = Field(1, ge=1, description="micro-batches of data.bs whose gradients are summed before each "
                            "optimizer step (fastai's GradientAccumulation; the method runs per micro-batch): an "
                            "effective batch of data.bs × accumulate; 1: a step per batch")
    early_stop: EarlyStop|None = Field(None, description="stop when the validation split's monitor stops improving "
                                       "(fastai's EarlyStoppingCallback); refused when data.valid_split is test")
    loggers: list[Literal[tuple(LOGGERS)]] = Field(default_factory=list, description="experiment trackers beside "
                                                   "history.csv (csv): tensorboard (run/tensorboard), wandb (W&B; "
                                                   "WANDB_MODE=offline logs under run/wandb)")
    compile: bool|Literal['inductor', 'aot_eager', 'cudagraphs'] = Field(
        False, description="torch.compile the model during its first batches: true = inductor (torch's default; on a "
        "CPU it needs a C++ compiler); aot_eager checks a model compiles without generating code")
    lr_find: LRFind = Field(default_factory=LRFind, description="fastai's learning-rate range test "
                            "(train.lr: find, eac-fastai lr-find)")

    @field_validator('lr')
    @classmethod
    def _lr(cls, v):
        if v != 'find' and v <= 0: raise ValueError("must be positive or 'find'")
        return v

    @model_validator(mode='after')
    def _wd_bn_bias(self):
        from ..models.learner import wd_bn_bias_problem
        if problem := wd_bn_bias_problem(self.opt, self.wd_bn_bias): raise ValueError(problem)
        return self

class _MethodChecks(Section):
    @model_validator(mode='after')
    def _method_defaults(self):
        """The method's official augmentation where the recipe leaves it out (its basic ops; none of its erasing when
        its callback erases nothing by default), and the method's own checks."""
        cls, aug = METHODS[self.method], self.augment
        if 'erase' not in aug.model_fields_set and inspect.signature(cls).parameters['erase'].default is None:
            aug.erase = None
        if aug.basic is not None and aug.basic.ops is None: aug.basic.ops = list(cls.basic_ops)
        if problem := flip_problem(self.method, cls, aug.basic, aug.flip): raise ValueError(problem)
        if problem := early_stop_problem(self): raise ValueError(problem)
        section = getattr(self, self.method, None)
        if problem := getattr(section, 'epochs_problem', lambda epochs: None)(self.train.epochs):
            raise ValueError(f"{self.method}.{problem}")
        return self

def early_stop_problem(recipe) -> str|None:
    "Why `recipe`'s train.early_stop cannot be used: selecting on the test split, or on a subset of the split."
    if recipe.train.early_stop is None: return None
    if recipe.data.valid_split == 'test':
        return ("train.early_stop: data.valid_split is test, and stopping (and choosing best.pth) on the test set "
                "inflates the accuracy reported on it; evaluate on a validation split (data.valid_split: valid, "
                "rows with split 'valid') or drop train.early_stop and report the last epochs (the papers' protocol)")
    if recipe.train.eval_subset is not None:
        return ("train.early_stop: train.eval_subset scores the earlier epochs on a subset of the split, which early "
                "stopping would compare with whole-split scores; set train.eval_subset: null")

def _method_sections() -> dict:
    "A field per method with settings, named after it, of its callback's section."
    return {name: (cls.config, Field(default_factory=cls.config, description=cls.config.__doc__.rstrip('.')))
            for name, cls in METHODS.items() if cls.config.model_fields}

Recipe = create_model(
    'Recipe', __base__=_MethodChecks, __module__=__name__, __doc__="A whole training recipe.",
    method=(Literal[tuple(METHODS)], Field('eac', description="baseline (CE with the same augmentation) or a method "
                                           "with its section below: "
                                           + ', '.join(m for m in METHODS if m != 'baseline'))),
    seed=(int|None, Field(0, description="seed of everything random (null: unseeded)")),
    tags=(dict[str, str], Field(default_factory=dict, description="labels kept with the run (a matrix cell's axis "
                                "values); `eac-fastai table` groups by them")),
    data=(Data, Field(description="the noisy-label CSV (or the demo data) and how it is loaded")),
    model=(Model, Field(default_factory=Model, description="the backbone and its weights")),
    augment=(Augment, Field(default_factory=Augment, description="augmentation of the training batch")),
    **_method_sections(),
    train=(Train, Field(default_factory=Train, description="optimisation, schedule, precision, device, checkpoints")))
