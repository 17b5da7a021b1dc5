"""Training recipes: YAML files validated by pydantic, with `key.sub=value` overrides.

Every unknown key and wrong type is reported at once, naming the key and the file. A recipe may start from
others (`base: file.yaml` or a list, relative to it, merged in order, its own keys last). A *matrix* file
(`matrix:` axes → values → recipe keys, dotted, plus an optional `base`) names one recipe per combination of axis
values, `FILE#value1-value2-…`: the file's own keys, then each axis's bases and keys in axis order (later axes win);
`{axis}` in a string value is replaced by the cell's value of that axis, and the axis values become its `tags`."""
import copy, fnmatch, itertools, re
from pathlib import Path
import yaml
from pydantic import ValidationError
from ..errors import UserError
from .schema import Recipe

__all__ = ['RecipeError', 'load_recipe', 'load_recipes', 'apply_overrides', 'recipe_yaml', 'recipe_cells',
           'recipe_configs', 'ref_stem']

class RecipeError(UserError): "A recipe file or override that does not validate."

def _set(cfg:dict, key:str, value, source, what) -> dict:
    "Set the dotted `key` of a nested dict (`value` is `_DELETE` to remove it); `what` names the setting in errors."
    *parents, leaf = key.split('.')
    if not key or any(not p for p in key.split('.')):
        raise RecipeError(f"{source}: {what} is not of the form key.sub=value or ~key.sub")
    node = cfg
    for i, p in enumerate(parents):
        child = node.get(p)
        if child is None: child = node[p] = {}
        elif not isinstance(child, dict):
            raise RecipeError(f"{source}: {what}: {'.'.join(parents[:i+1])} is a value, not a section")
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
        if not (eq or delete):
            raise RecipeError(f"{source}: override {o!r} is not of the form key.sub=value or ~key.sub")
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

class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key, first:int, second:int): self.key, self.first, self.second = key, first, second

class _UniqueKeyLoader(yaml.SafeLoader):
    "YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the last silently)."
    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == 'tag:yaml.org,2002:merge': continue        # `<<: *anchor` merges, it is not a key
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in seen: raise _DuplicateKey(key, seen[key]+1, key_node.start_mark.line+1)
                seen[key] = key_node.start_mark.line
            except TypeError: continue                  # an unhashable key: the safe loader's own error follows
        return super().construct_mapping(node, deep)

def _read_yaml(path:Path) -> dict:
    "The mapping in the YAML file at `path`, or a `RecipeError` naming the file (and line) and the problem."
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found" + (" (it is a folder)" if path.is_dir() else ""))
    try: text = path.read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as e: raise RecipeError(f"{path}: cannot read the recipe ({e})") from None
    try: cfg = yaml.load(text, Loader=_UniqueKeyLoader) or {}
    except _DuplicateKey as e:
        raise RecipeError(f"{path}:{e.second}: key {e.key!r} is given twice (lines {e.first} and {e.second}); "
                          "keep one") from None
    except yaml.YAMLError as e:
        mark = getattr(e, 'problem_mark', None)
        where = f":{mark.line+1}" if mark else ''
        what = getattr(e, 'problem', None) or str(e).splitlines()[0]
        hint = '; indent with spaces, not tabs' if '\t' in text else ''
        raise RecipeError(f"{path}{where}: not valid YAML: {what}{hint}") from None
    if not isinstance(cfg, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of sections (method, data, model, ...), "
                          f"got {type(cfg).__name__}")
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
        if path in chain:
            raise RecipeError(f"{source}: base {b} includes itself ({' → '.join(str(c) for c in (*chain, path))})")
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
            if keys is not None and not isinstance(keys, dict):
                raise RecipeError(f"{where}: must be a mapping of recipe keys (key.sub: value), got {keys!r}")
            if '-' in str(value):
                raise RecipeError(f"{where}: axis values name cells joined by '-', so they cannot contain one")
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
                        raise RecipeError(f"{path}: matrix.{axis}.{value}.{k}: {v!r} names {{{e}}}, "
                                          "which is not an axis "
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
        if pattern is not None:
            raise RecipeError(f"{path}: is not a matrix (no `matrix:` key), so it has no cell {pattern!r}")
        return {str(ref): apply_overrides(cfg, overrides, source=ref)}
    every = _cells(path, cfg)
    cells = {n: c for n, c in every.items() if pattern is None or fnmatch.fnmatchcase(n, pattern)}
    if not cells: raise RecipeError(f"{path}: no cell {pattern!r}; cells are named like {next(iter(every))} "
                                    f"(`eac-fastai validate {path}` lists them)")
    return {f"{path}#{n}": apply_overrides(c, overrides, source=f"{path}#{n}") for n, c in cells.items()}

def recipe_cells(ref) -> list[str]:
    """The references `ref` names: itself for a recipe or a matrix cell, the matching cells for `FILE` or `FILE#glob` of
    a matrix."""
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
_NAMES_KEY = re.compile(r'^[a-z_]+(\.[a-z_0-9]+)+: ')

def _format_errors(e:ValidationError, source) -> str:
    "One line per bad key; the alternatives of a union (`lr: 1e-3 | find`) are merged into one line."
    problems = {}
    for err in e.errors():
        loc = '.'.join(str(p) for p in err['loc'] if str(p) not in _TYPE_TAGS and '[' not in str(p)) or '(top level)'
        msg = 'unknown key' if err['type'] == 'extra_forbidden' else err['msg'].removeprefix('Value error, ')
        got = err.get('input')
        suffix = (f" (got {got!r})" if err['type'] not in ('extra_forbidden', 'missing') and not isinstance(got, dict)
                  else '')
        msgs, _ = problems.setdefault(loc, ([], suffix))
        if msg not in msgs: msgs.append(msg)
    # a recipe-wide check names its own key (`eac.ramp: ...`)
    lines = [f"  {'' if loc == '(top level)' and _NAMES_KEY.match(msgs[0]) else loc + ': '}{' or '.join(msgs)}{suffix}"
             for loc, (msgs, suffix) in problems.items()]
    return f"{source}: {len(lines)} problem(s):\n" + '\n'.join(lines)

def load_recipe(ref, overrides=()) -> Recipe:
    """Read recipe `ref` (a YAML file, or `FILE#cell` of a matrix), apply `overrides`, validate; `RecipeError` lists
    every problem."""
    path, cell = _split_ref(ref)
    if cell is not None and any(c in cell for c in "*?["):
        raise RecipeError(f"{path}: {cell!r} is a pattern; name one cell")
    configs = recipe_configs(ref, overrides)
    if len(configs) > 1 or (cell is None and next(iter(configs)) != str(ref)):     # a matrix named without its cell
        raise RecipeError(f"{path}: is a matrix of {len(configs)} recipes; name one as {next(iter(configs))} "
                          f"(`eac-fastai validate {path}` lists them)")
    return _validate(*configs.popitem()[::-1])

def recipe_yaml(recipe:Recipe) -> str:
    "The fully resolved recipe as YAML, loadable again by `load_recipe`."
    return yaml.safe_dump(recipe.model_dump(mode='json'), sort_keys=False, default_flow_style=None)
