"""Training recipes: YAML files validated by pydantic, with `key.sub=value` overrides.

Every unknown key and wrong type is reported at once, naming the key and the file."""
from pathlib import Path
from typing import Literal
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from .errors import UserError

__all__ = ['Recipe', 'RecipeError', 'load_recipe', 'apply_overrides', 'recipe_yaml']

class RecipeError(UserError): "A recipe file or override that does not validate."

class _Section(BaseModel): model_config = ConfigDict(extra='forbid')

class DemoData(_Section):
    "The built-in synthetic faces, generated under settings.ini's data dir on first use."
    n_train: int = Field(100, ge=1, description="training images per class")
    n_valid: int = Field(30, ge=1, description="validation images per class")
    n_test: int = Field(30, ge=1, description="test images per class")
    size: int = Field(64, ge=16, description="image side in pixels")
    noise: float = Field(0.3, ge=0, le=1, description="symmetric label-noise rate on the train split")
    seed: int = 0

class Data(_Section):
    csv: str|None = Field(None, description="noisy-label CSV (relative: under settings.ini's data dir)")
    root: str|None = Field(None, description="folder the CSV's image paths are relative to (default: the CSV's folder)")
    demo: DemoData|None = Field(None, description="use the built-in demo data instead of `csv`")
    classes: list[str]|None = Field(None, description="class vocabulary in model output order (default: sorted labels)")
    valid_split: Literal['valid', 'test'] = Field('valid', description="split evaluated after every epoch")
    img_size: int = Field(224, ge=8)
    bs: int = Field(32, ge=1)
    num_workers: int = Field(0, ge=0)
    drop_last: bool = False
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    @model_validator(mode='after')
    def _one_source(self):
        if (self.csv is None) == (self.demo is None): raise ValueError("set exactly one of data.csv and data.demo")
        return self

class Model(_Section):
    arch: Literal['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152'] = 'resnet18'
    weights: str|None = Field(None, description="local pretrained backbone (relative: under settings.ini's weights dir); null: from scratch")

class Erase(_Section):
    p: float = Field(0.5, ge=0, le=1, description="probability per image")
    scale: tuple[float, float] = (0.02, 0.25)
    ratio: tuple[float, float] = (0.3, 3.3)
    value: float|Literal['random'] = 0.

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

class GaussNoise(_Section):
    p: float = Field(0.5, ge=0, le=1, description="probability per image (original view only)")
    var: float = Field(30., ge=0, description="variance on the 0-255 scale")

class Augment(_Section):
    erase: Erase|None = Field(default_factory=Erase, description="per-image random erasing (null: off)")
    gauss_noise: GaussNoise|None = Field(default_factory=GaussNoise, description="Gaussian pixel noise (null: off)")

class EAC(_Section):
    lam: float = Field(5., ge=0, description="weight of the CAM flip-consistency loss")
    mode: Literal['noisy', 'clean'] = Field('noisy', description="noisy: views erased independently; clean: exact mirror")

class LRFind(_Section):
    start_lr: float = Field(1e-7, gt=0)
    end_lr: float = Field(10., gt=0)
    num_it: int = Field(100, ge=20)
    suggestion: Literal['valley', 'slide', 'minimum', 'steep'] = 'valley'

class Train(_Section):
    epochs: int = Field(60, ge=1)
    lr: float|Literal['find'] = Field(2e-4, description="peak/initial learning rate, or 'find' to use lr_find's suggestion")
    opt: Literal['adam', 'sgd', 'fastai_adam', 'fastai_sgd'] = 'adam'
    wd: float = Field(1e-4, ge=0)
    wd_bn_bias: bool = True
    schedule: Literal['exp', 'cosine', 'constant', 'one_cycle', 'flat_cos'] = 'exp'
    gamma: float = Field(0.9, gt=0, le=1, description="per-epoch decay of the exp schedule")
    pct_start: float|None = Field(None, gt=0, lt=1, description="warm-up share (one_cycle, default 0.25) or flat share (flat_cos, default 0.75)")
    precision: Literal['fp32', 'fp16', 'bf16'] = 'fp32'
    device: Literal['auto', 'cpu', 'cuda'] = 'auto'
    lr_find: LRFind = Field(default_factory=LRFind)

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
    method: Literal['baseline', 'eac'] = 'eac'
    seed: int|None = 0
    data: Data
    model: Model = Field(default_factory=Model)
    augment: Augment = Field(default_factory=Augment)
    eac: EAC = Field(default_factory=EAC)
    train: Train = Field(default_factory=Train)

def apply_overrides(cfg:dict, overrides, source='overrides') -> dict:
    "Apply `a.b=value` (value parsed as YAML) and `~a.b` (delete) to a nested dict, in order."
    for o in overrides or []:
        key, eq, raw = o.partition('=')
        delete = key.startswith('~') and not eq
        key = key.lstrip('~')
        if not (eq or delete) or not key or any(not p for p in key.split('.')):
            raise RecipeError(f"{source}: override {o!r} is not of the form key.sub=value or ~key.sub")
        *parents, leaf = key.split('.')
        node = cfg
        for i, p in enumerate(parents):
            child = node.get(p)
            if child is None: child = node[p] = {}
            elif not isinstance(child, dict):
                raise RecipeError(f"{source}: override {o!r}: {'.'.join(parents[:i+1])} is a value, not a section")
            node = child
        if delete: node.pop(leaf, None)
        else:
            try: node[leaf] = yaml.safe_load(raw) if raw.strip() else None
            except yaml.YAMLError: node[leaf] = raw
    return cfg

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

def load_recipe(path, overrides=()) -> Recipe:
    "Read the YAML recipe at `path`, apply `overrides`, validate; `RecipeError` lists every problem."
    path = Path(path)
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
    apply_overrides(cfg, overrides, source=path)
    try: return Recipe.model_validate(cfg)
    except ValidationError as e: raise RecipeError(_format_errors(e, path)) from None

def recipe_yaml(recipe:Recipe) -> str:
    "The fully resolved recipe as YAML, loadable again by `load_recipe`."
    return yaml.safe_dump(recipe.model_dump(mode='json'), sort_keys=False, default_flow_style=None)
