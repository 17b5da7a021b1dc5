"""Training recipes: YAML files validated by pydantic, with `key.sub=value` overrides.

Every unknown key and wrong type is reported at once, naming the key and the file. A recipe may start from
others (`base: file.yaml` or a list, relative to it, merged in order, its own keys last). A *matrix* file
(`matrix:` axes → values → recipe keys, dotted, plus an optional `base`) names one recipe per combination of axis
values, `FILE#value1-value2-…`: the file's own keys, then each axis's bases and keys in axis order (later axes win);
`{axis}` in a string value is replaced by the cell's value of that axis, and the axis values become its `tags`."""
import copy, fnmatch, itertools
import typing
from pathlib import Path
from typing import Literal
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from .archs import ARCHS
from .cam import CONSISTENCIES
from .errors import UserError

__all__ = ['Recipe', 'RecipeError', 'load_recipe', 'load_recipes', 'apply_overrides', 'recipe_yaml', 'recipe_cells', 'recipe_configs', 'ref_stem',
           'recipe_reference', 'REFERENCE_MARKERS', 'with_reference']

class RecipeError(UserError): "A recipe file or override that does not validate."

ARCH_NAMES = tuple(ARCHS)
METHOD_NAMES = ('baseline', 'eac', 'ac', 'scn', 'rul')
OFFICIAL_BASIC_OPS = {'baseline': ['noise'], 'eac': ['noise'], 'ac': ['noise'], 'scn': ['flip', 'noise'], 'rul': ['flip', 'noise']}

class _Section(BaseModel): model_config = ConfigDict(extra='forbid')

class DemoData(_Section):
    "The built-in synthetic faces, generated under settings.ini's data dir on first use."
    n_train: int = Field(100, ge=1, description="training images per class")
    n_valid: int = Field(30, ge=1, description="validation images per class")
    n_test: int = Field(30, ge=1, description="test images per class")
    size: int = Field(64, ge=16, description="image side in pixels")
    noise: float = Field(0.3, ge=0, le=1, description="symmetric label-noise rate on the train split")
    seed: int = Field(0, description="seed of the images and the noise")

class Data(_Section):
    csv: str|None = Field(None, description="noisy-label CSV (relative: under settings.ini's data dir)")
    root: str|None = Field(None, description="folder the CSV's image paths are relative to (default: the CSV's folder)")
    demo: DemoData|None = Field(None, description="use the built-in demo data instead of `csv`")
    classes: list[str]|None = Field(None, description="class vocabulary in model output order (default: sorted labels)")
    valid_split: Literal['valid', 'test'] = Field('valid', description="split evaluated after every epoch")
    img_size: int = Field(224, ge=8, description="side the images are squish-resized to (bilinear)")
    bs: int = Field(32, ge=1, description="batch size (per process when training in several)")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes decoding images")
    drop_last: bool = Field(False, description="drop the last incomplete training batch")
    sampler: Literal['shuffle', 'balanced'] = Field('shuffle', description="balanced: draw training images with probability ∝ 1/class count, with replacement (AffectNet)")
    cache: bool = Field(False, description="decode every image once and keep it in memory (N×3×img_size² bytes): the same batches, faster epochs")
    mean: tuple[float, float, float] = Field((0.485, 0.456, 0.406), description="Normalize mean per channel (ImageNet's)")
    std: tuple[float, float, float] = Field((0.229, 0.224, 0.225), description="Normalize std per channel (ImageNet's)")

    @model_validator(mode='after')
    def _one_source(self):
        if (self.csv is None) == (self.demo is None): raise ValueError("set exactly one of data.csv and data.demo")
        return self

class Model(_Section):
    arch: Literal[ARCH_NAMES] = Field('resnet18', description="backbone (README: Backbones and pretrained weights)")
    weights: str|None = Field(None, description="local pretrained backbone (relative: under settings.ini's weights dir); null: from scratch")

class Erase(_Section):
    p: float = Field(0.5, ge=0, le=1, description="probability per image")
    scale: tuple[float, float] = Field((0.02, 0.25), description="erased area ÷ image area, drawn uniformly in [low, high]")
    ratio: tuple[float, float] = Field((0.3, 3.3), description="aspect ratio of the erased box, drawn log-uniformly")
    value: float|tuple[float, float, float]|Literal['random'] = Field(0., description="fill value after Normalize: one number, a per-channel list of three, or random (normal noise)")

    @field_validator('scale')
    @classmethod
    def _scale(cls, v):
        if not 0 < v[0] <= v[1] <= 1: raise ValueError("needs 0 < low <= high <= 1")
        return v

    @field_validator('ratio')
    @classmethod
    def _ratio(cls, v):
        if not 0 < v[0] <= v[1]: raise ValueError("needs 0 < low <= high")
        return v

class Basic(_Section):
    p: float = Field(0.5, ge=0, le=1, description="probability per image (EAC: original view only)")
    ops: list[Literal['noise', 'flip']]|None = Field(None, description="drawn uniformly when applied; null: the method's official ops (eac, ac, baseline: [noise]; scn, rul: [flip, noise])")
    var: float = Field(30., ge=0, description="Gaussian noise variance on the 0-255 scale")

class Crop(_Section):
    padding: int = Field(4, ge=1, description="black pixels added on each side before the random crop back to img_size")

class Flip(_Section):
    p: float = Field(0.5, ge=0, le=1, description="probability per image")

class Augment(_Section):
    erase: Erase|None = Field(default_factory=Erase, description="per-image random erasing after Normalize (null: off); not given: off for method ac, which erases nothing")
    basic: Basic|None = Field(default_factory=Basic, description="the official 'basic aug': with probability p one of ops (null: off)")
    crop: Crop|None = Field(None, description="CIFAR-style padded random crop (null: off)")
    flip: Flip|None = Field(None, description="horizontal flip drawn apart from the basic aug, before it (null: off); "
                            "the supplementary's fair baseline and SCN: p 0.5; not for eac and ac, which mirror the "
                            "image themselves")

_RAMP = ("epochs over which the consistency weight rises linearly from 0 to lam, at most train.epochs "
         "(0: off, the official; README: EAC's consistency options)")
_CONSISTENCY = ("mse: the official MSE of the two views' CAMs; relative: that MSE ÷ their detached mean squared CAM "
                "(a value shrinking the features cannot lower); normalized: each image's MSE ÷ its views' mean squared "
                "CAM, not detached (no gradient along the features' scale)")

class EAC(_Section):
    lam: float = Field(5., ge=0, description="weight of the CAM flip-consistency loss")
    mode: Literal['noisy', 'clean'] = Field('noisy', description="noisy: views erased independently; clean: exact mirror")
    one_forward: bool = Field(False, description="both views in one forward pass, BatchNorm statistics still per view (speed)")
    ramp: float = Field(0., ge=0, description=_RAMP)
    consistency: Literal[CONSISTENCIES] = Field('mse', description=_CONSISTENCY)

class AC(_Section):
    lam: float = Field(1., ge=0, description="weight of the CAM flip-consistency loss (Guo et al.: 1)")
    ramp: float = Field(0., ge=0, description=_RAMP)
    consistency: Literal[CONSISTENCIES] = Field('mse', description=_CONSISTENCY)

class SCN(_Section):
    beta: float = Field(0.7, gt=0, lt=1, description="share of each batch in the high-importance group")
    margin1: float = Field(0.15, ge=0, description="rank-regularisation margin (SCN README: 0.07 at batch 64)")
    margin2: float = Field(0.2, ge=0, description="relabelling margin")
    relabel_epoch: int = Field(10, ge=1, description="first epoch (1-based) that relabels")
    relabel: Literal['all', 'low', 'none'] = Field('all', description="all: every image (official code); low: the low-importance group (paper)")
    drop: float = Field(0., ge=0, lt=1, description="dropout before the importance and class layers")

class RUL(_Section):
    dim: int = Field(64, ge=1, description="feature dimension of the mean and log-variance branches")
    drop: float = Field(0.4, ge=0, lt=1, description="dropout in both branches")
    fc_lr_mult: float = Field(10., gt=0, description="classifier learning rate ÷ train.lr (officially 2e-3 / 2e-4)")

class LRFind(_Section):
    start_lr: float = Field(1e-7, gt=0, description="first learning rate tried")
    end_lr: float = Field(10., gt=0, description="last learning rate tried")
    num_it: int = Field(100, ge=20, description="steps of the range test")
    suggestion: Literal['valley', 'slide', 'minimum', 'steep'] = Field('valley', description="fastai suggestion used by train.lr: find")

class EvalSubset(_Section):
    n: int = Field(2000, ge=1, description="evaluation images scored in the earlier epochs: a fixed subset, the same "
                   "number per class where the split allows")
    full_last: int = Field(5, ge=5, description="the last epochs scored on the whole evaluation split (at least 5, so "
                           "last-5 and final are whole-split figures)")
    seed: int = Field(0, description="seed of the subset's draw, apart from the recipe's seed: runs of every seed are "
                      "scored on the same images")

class Train(_Section):
    epochs: int = Field(60, ge=1, description="training epochs; the evaluation split is scored after each")
    lr: float|Literal['find'] = Field(2e-4, description="peak/initial learning rate, or 'find' to use lr_find's suggestion")
    opt: Literal['adam', 'sgd', 'fastai_adam', 'fastai_sgd'] = Field('adam', description="adam: torch.optim.Adam with coupled L2 decay (the paper's); sgd: torch, momentum 0.9; fastai_adam, fastai_sgd")
    wd: float = Field(1e-4, ge=0, description="weight decay")
    wd_bn_bias: bool = Field(True, description="decay BatchNorm weights and biases too (false only with the fastai optimizers)")
    schedule: Literal['exp', 'cosine', 'constant', 'one_cycle', 'flat_cos'] = Field('exp', description="exp: ×gamma per epoch (the paper's); cosine: torch's CosineAnnealingLR per epoch; constant; fastai's one_cycle or flat_cos")
    gamma: float = Field(0.9, gt=0, le=1, description="per-epoch decay of the exp schedule")
    pct_start: float|None = Field(None, gt=0, lt=1, description="warm-up share (one_cycle, default 0.25) or flat share (flat_cos, default 0.75)")
    precision: Literal['fp32', 'fp16', 'bf16'] = Field('fp32', description="fp16 or bf16: fastai's mixed precision (CUDA only)")
    device: Literal['auto', 'cpu', 'cuda'] = Field('auto', description="auto: the GPU when there is one")
    channels_last: bool = Field(False, description="model in channels-last memory format (fastai's ChannelsLast): faster convolutions on many CPUs and GPUs")
    resumable: bool = Field(True, description="write models/resume.pth (weights, optimizer, generators, method state) every epoch for `eac-fastai train --resume`")
    memorisation: bool = Field(True, description="log flipped_as_given / flipped_as_clean each epoch (training images whose label differs from clean_label)")
    eval_subset: EvalSubset|None = Field(None, description="score the evaluation split on a fixed subset except in the "
                                         "last epochs (cheaper epochs, training unchanged; history's eval_images says "
                                         "which); null: the whole split every epoch")
    lr_find: LRFind = Field(default_factory=LRFind, description="fastai's learning-rate range test (train.lr: find, eac-fastai lr-find)")

    @field_validator('lr')
    @classmethod
    def _lr(cls, v):
        if v != 'find' and v <= 0: raise ValueError("must be positive or 'find'")
        return v

    @model_validator(mode='after')
    def _wd_bn_bias(self):
        from .learner import wd_bn_bias_problem
        if problem := wd_bn_bias_problem(self.opt, self.wd_bn_bias): raise ValueError(problem)
        return self

class Recipe(_Section):
    "A whole training recipe."
    method: Literal[METHOD_NAMES] = Field('eac', description="baseline (CE), eac, ac (Attention Consistency), scn, rul")
    seed: int|None = Field(0, description="seed of everything random (null: unseeded)")
    tags: dict[str, str] = Field(default_factory=dict, description="labels kept with the run (a matrix cell's axis values); `eac-fastai table` groups by them")
    data: Data = Field(description="the noisy-label CSV (or the demo data) and how it is loaded")
    model: Model = Field(default_factory=Model, description="the backbone and its weights")
    augment: Augment = Field(default_factory=Augment, description="augmentation of the training batch")
    eac: EAC = Field(default_factory=EAC, description="EAC (method: eac)")
    ac: AC = Field(default_factory=AC, description="Attention Consistency, Guo et al. CVPR'19 (method: ac)")
    scn: SCN = Field(default_factory=SCN, description="Self-Cure Network, CVPR'20 (method: scn)")
    rul: RUL = Field(default_factory=RUL, description="Relative Uncertainty Learning, NeurIPS'21 (method: rul)")
    train: Train = Field(default_factory=Train, description="optimisation, schedule, precision, device, checkpoints")

    @model_validator(mode='after')
    def _method_defaults(self):
        "The method's official augmentation where the recipe leaves it out: basic ops (see Basic.ops); AC erases nothing."
        if self.method == 'ac' and 'erase' not in self.augment.model_fields_set: self.augment.erase = None
        b = self.augment.basic
        if b is not None and b.ops is None: b.ops = list(OFFICIAL_BASIC_OPS[self.method])
        if b is not None and 'flip' in b.ops and self.method in ('eac', 'ac'):
            raise ValueError(f"augment.basic.ops: method {self.method} makes the flipped view itself; remove flip")
        if self.method in ('eac', 'ac') and getattr(self, self.method).ramp > self.train.epochs:
            raise ValueError(f"{self.method}.ramp: {getattr(self, self.method).ramp:g} epochs is longer than "
                             f"train.epochs ({self.train.epochs}); give at most {self.train.epochs}")
        if self.augment.flip is not None and self.method in ('eac', 'ac'):
            raise ValueError(f"augment.flip: method {self.method} makes the flipped view itself; "
                             "set augment.flip to null")
        return self

def _set(cfg:dict, key:str, value, source, what) -> dict:
    "Set the dotted `key` of a nested dict (`value` is `_DELETE` to remove it); `what` names the setting in errors."
    *parents, leaf = key.split('.')
    if not key or any(not p for p in key.split('.')): raise RecipeError(f"{source}: {what} is not of the form key.sub=value or ~key.sub")
    node = cfg
    for i, p in enumerate(parents):
        child = node.get(p)
        if child is None: child = node[p] = {}
        elif not isinstance(child, dict): raise RecipeError(f"{source}: {what}: {'.'.join(parents[:i+1])} is a value, not a section")
        node = child
    if value is _DELETE: node.pop(leaf, None)
    else: node[leaf] = value
    return cfg

_DELETE = object()

def apply_overrides(cfg:dict, overrides, source='overrides') -> dict:
    "Apply `a.b=value` (value parsed as YAML) and `~a.b` (delete) to a nested dict, in order."
    for o in overrides or []:
        key, eq, raw = o.partition('=')
        delete = key.startswith('~') and not eq
        if not (eq or delete): raise RecipeError(f"{source}: override {o!r} is not of the form key.sub=value or ~key.sub")
        if delete: value = _DELETE
        else:
            try: value = yaml.safe_load(raw) if raw.strip() else None
            except yaml.YAMLError: value = raw
        _set(cfg, key.lstrip('~'), value, source, f"override {o!r}")
    return cfg

def _merge(into:dict, new:dict) -> dict:
    "Deep-merge `new` into `into` (sections merge key by key, values replace)."
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict): _merge(into[k], v)
        else: into[k] = copy.deepcopy(v)
    return into

def _read_yaml(path:Path) -> dict:
    "The mapping in the YAML file at `path`, or a `RecipeError` naming the file (and line) and the problem."
    if not path.is_file(): raise RecipeError(f"{path}: recipe file not found" + (" (it is a folder)" if path.is_dir() else ""))
    try: text = path.read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as e: raise RecipeError(f"{path}: cannot read the recipe ({e})") from None
    try: cfg = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, 'problem_mark', None)
        where = f":{mark.line+1}" if mark else ''
        what = getattr(e, 'problem', None) or str(e).splitlines()[0]
        hint = '; indent with spaces, not tabs' if '\t' in text else ''
        raise RecipeError(f"{path}{where}: not valid YAML: {what}{hint}") from None
    if not isinstance(cfg, dict): raise RecipeError(f"{path}: a recipe is a mapping of sections (method, data, model, ...), got {type(cfg).__name__}")
    return cfg

def _with_bases(cfg:dict, folder:Path, source, chain=()) -> dict:
    "`cfg` merged over its `base` recipes (a file or a list, relative to `folder`), recursively."
    bases = cfg.pop('base', None) or []
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise RecipeError(f"{source}: base must be a recipe file or a list of them")
    out = {}
    for b in bases:
        path = (folder/b).resolve()
        if path in chain: raise RecipeError(f"{source}: base {b} includes itself ({' → '.join(str(c) for c in (*chain, path))})")
        _merge(out, _with_bases(_read_yaml(path), path.parent, path, (*chain, path)))
    return _merge(out, cfg)

def _split_ref(ref) -> tuple[Path, str|None]:
    "`FILE#cell` → (FILE, cell); a plain path → (path, None)."
    path, _, cell = str(ref).partition('#')
    return Path(path), cell or None

def ref_stem(ref) -> str:
    "A folder-name stem for recipe `ref`: the matrix cell (glob characters as `x`), or the recipe file's stem."
    path, cell = _split_ref(ref)
    return ''.join('x' if c in '*?[]' else c for c in cell) if cell else path.stem

def _cells(path:Path, cfg:dict) -> dict[str, dict]:
    "The recipe of every cell of the matrix file `path` (config `cfg`), by name, with its axis values as tags."
    cfg = dict(cfg)
    axes = cfg.pop('matrix')
    if not isinstance(axes, dict) or not axes or not all(isinstance(v, dict) and v for v in axes.values()):
        raise RecipeError(f"{path}: matrix must map each axis name to a mapping of its values to recipe keys")
    for axis, values in axes.items():
        for value, keys in values.items():
            where = f"{path}: matrix.{axis}.{value}"
            if keys is not None and not isinstance(keys, dict): raise RecipeError(f"{where}: must be a mapping of recipe keys (key.sub: value), got {keys!r}")
            if '-' in str(value): raise RecipeError(f"{where}: axis values name cells joined by '-', so they cannot contain one")
    cells = {}
    for combo in itertools.product(*(list(v.items()) for v in axes.values())):
        tags = {axis: str(value) for axis, (value, _) in zip(axes, combo)}
        cell = copy.deepcopy(cfg)
        for axis, (value, keys) in zip(axes, combo):
            keys = dict(keys or {})
            bases = keys.pop('base', None)
            if bases: _merge(cell, _with_bases({'base': bases}, path.parent, path))   # later axes win
            for k, v in keys.items():
                if isinstance(v, str):
                    try: v = v.format(**tags)
                    except (KeyError, IndexError, ValueError) as e:
                        raise RecipeError(f"{path}: matrix.{axis}.{value}.{k}: {v!r} names {{{e}}}, which is not an axis "
                                          f"({', '.join(axes)}); write a literal brace as {{{{ or }}}}") from None
                _set(cell, k, v, path, f"matrix.{axis}.{value}.{k}")
        cell['tags'] = {**(cell.get('tags') or {}), **tags}
        cells['-'.join(tags.values())] = cell
    return cells

def recipe_configs(ref, overrides=()) -> dict[str, dict]:
    """The raw configurations (bases merged, `overrides` applied, not validated) named by `ref`, by reference: a recipe
    file; `FILE#cell` of a matrix; or `FILE#glob` / `FILE` for the matching / all cells of a matrix."""
    path, pattern = _split_ref(ref)
    cfg = _with_bases(_read_yaml(path), path.parent, path, (path.resolve(),))
    if 'matrix' not in cfg:
        if pattern is not None: raise RecipeError(f"{path}: is not a matrix (no `matrix:` key), so it has no cell {pattern!r}")
        return {str(ref): apply_overrides(cfg, overrides, source=ref)}
    every = _cells(path, cfg)
    cells = {n: c for n, c in every.items() if pattern is None or fnmatch.fnmatchcase(n, pattern)}
    if not cells: raise RecipeError(f"{path}: no cell {pattern!r}; cells are named like {next(iter(every))} "
                                    f"(`eac-fastai validate {path}` lists them)")
    return {f"{path}#{n}": apply_overrides(c, overrides, source=f"{path}#{n}") for n, c in cells.items()}

def recipe_cells(ref) -> list[str]:
    "The references `ref` names: itself for a recipe or a matrix cell, the matching cells for `FILE` or `FILE#glob` of a matrix."
    return list(recipe_configs(ref))

def _validate(cfg:dict, ref) -> Recipe:
    try: return Recipe.model_validate(cfg)
    except ValidationError as e: raise RecipeError(_format_errors(e, ref)) from None

def load_recipes(ref, overrides=()) -> dict[str, Recipe]:
    "Every recipe `ref` names (see `recipe_configs`), validated; one `RecipeError` lists the problems of all of them."
    out, problems = {}, []
    for r, cfg in recipe_configs(ref, overrides).items():
        try: out[r] = _validate(cfg, r)
        except RecipeError as e: problems.append(str(e))
    if problems: raise RecipeError('\n'.join(problems))
    return out

_TYPE_TAGS = {'float', 'int', 'str', 'bool'}

def _format_errors(e:ValidationError, source) -> str:
    "One line per bad key; the alternatives of a union (`lr: 1e-3 | find`) are merged into one line."
    problems = {}
    for err in e.errors():
        loc = '.'.join(str(p) for p in err['loc'] if str(p) not in _TYPE_TAGS and '[' not in str(p)) or '(top level)'
        msg = 'unknown key' if err['type'] == 'extra_forbidden' else err['msg'].removeprefix('Value error, ')
        got = err.get('input')
        suffix = f" (got {got!r})" if err['type'] not in ('extra_forbidden', 'missing') and not isinstance(got, dict) else ''
        msgs, _ = problems.setdefault(loc, ([], suffix))
        if msg not in msgs: msgs.append(msg)
    lines = [f"  {loc}: {' or '.join(msgs)}{suffix}" for loc, (msgs, suffix) in problems.items()]
    return f"{source}: {len(lines)} problem(s):\n" + '\n'.join(lines)

def load_recipe(ref, overrides=()) -> Recipe:
    "Read recipe `ref` (a YAML file, or `FILE#cell` of a matrix), apply `overrides`, validate; `RecipeError` lists every problem."
    path, cell = _split_ref(ref)
    if cell is not None and any(c in cell for c in "*?["): raise RecipeError(f"{path}: {cell!r} is a pattern; name one cell")
    configs = recipe_configs(ref, overrides)
    if len(configs) > 1 or (cell is None and next(iter(configs)) != str(ref)):     # a matrix named without its cell
        raise RecipeError(f"{path}: is a matrix of {len(configs)} recipes; name one as {next(iter(configs))} "
                          f"(`eac-fastai validate {path}` lists them)")
    return _validate(*configs.popitem()[::-1])

def recipe_yaml(recipe:Recipe) -> str:
    "The fully resolved recipe as YAML, loadable again by `load_recipe`."
    return yaml.safe_dump(recipe.model_dump(mode='json'), sort_keys=False, default_flow_style=None)

def _section(annotation):
    "The recipe section class in a field's annotation (also inside `X|None`), or None."
    for a in (annotation, *typing.get_args(annotation)):
        if isinstance(a, type) and issubclass(a, _Section): return a

def _yaml_value(v) -> str:
    if v is None: return 'null'
    if isinstance(v, bool): return str(v).lower()
    if isinstance(v, float): return f'{v:g}'
    if isinstance(v, (tuple, list)): return '[' + ', '.join(map(_yaml_value, v)) + ']'
    if isinstance(v, dict): return '{}' if not v else str(v)
    return str(v)

def _reference_rows(model, prefix=''):
    for name, f in model.model_fields.items():
        key, sec = prefix + name, _section(f.annotation)
        if sec is not None:
            default = 'required' if f.is_required() else 'null' if f.default is None and f.default_factory is None else ''
            yield f"| **`{key}`** | {default} | {f.description or ''} |"
            yield from _reference_rows(sec, key + '.')
            continue
        default = 'required' if f.is_required() else _yaml_value(f.default_factory() if f.default_factory else f.default)
        choices = [a for t in (f.annotation, *typing.get_args(f.annotation)) if typing.get_origin(t) is Literal for a in typing.get_args(t)]
        meaning = (f.description or '') + (f" (one of: {', '.join(f'`{c}`' for c in choices)})" if choices and len(choices) > 1 else '')
        yield f"| `{key}` | `{default}` | {meaning} |"

def recipe_reference() -> str:
    "Every recipe key with its default and meaning, as a Markdown table generated from the schema (README's recipe reference)."
    return '\n'.join(['| key | default | meaning |', '|---|---|---|', *_reference_rows(Recipe)])

REFERENCE_MARKERS = ('<!-- recipe reference: generated from the schema by `python -m eac_fastai.recipe README.md`; tested -->',
                     '<!-- end of the recipe reference -->')

def with_reference(text:str) -> str:
    "`text` (README) with the part between `REFERENCE_MARKERS` replaced by `recipe_reference()`."
    start, end = REFERENCE_MARKERS
    if start not in text or end not in text: raise ValueError(f"the text has no recipe-reference markers ({start} … {end})")
    head, _, rest = text.partition(start + '\n')
    _, _, tail = rest.partition(end)
    return head + start + '\n' + recipe_reference() + '\n' + end + tail

if __name__ == '__main__':
    import sys
    readme = Path(sys.argv[1])
    readme.write_text(with_reference(readme.read_text()))
