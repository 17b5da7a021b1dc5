"""README's recipe reference: every recipe key with its default and meaning, generated from the schema.

    .venv/bin/python -m eac_fastai.training.reference README.md      # rewrite the reference between its markers"""
import typing
from pathlib import Path
from typing import Literal
from ..config import Section
from .schema import Recipe

__all__ = ['recipe_reference', 'REFERENCE_MARKERS', 'with_reference']

def _section(annotation):
    "The recipe section class in a field's annotation (also inside `X|None`), or None."
    for a in (annotation, *typing.get_args(annotation)):
        if isinstance(a, type) and issubclass(a, Section): return a

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
            default = ('required' if f.is_required() else
                       'null' if f.default is None and f.default_factory is None else '')
            yield f"| **`{key}`** | {default} | {f.description or ''} |"
            yield from _reference_rows(sec, key + '.')
            continue
        default = ('required' if f.is_required() else
                   _yaml_value(f.default_factory() if f.default_factory else f.default))
        choices = [a for t in (f.annotation, *typing.get_args(f.annotation)) if typing.get_origin(t) is Literal
                   for a in typing.get_args(t)]
        meaning = (f.description or '') + (f" (one of: {', '.join(f'`{c}`' for c in choices)})"
                                           if choices and len(choices) > 1 else '')
        yield f"| `{key}` | `{default}` | {meaning} |"

def recipe_reference() -> str:
    """Every recipe key with its default and meaning, as a Markdown table generated from the schema (README's recipe
    reference)."""
    return '\n'.join(['| key | default | meaning |', '|---|---|---|', *_reference_rows(Recipe)])

REFERENCE_MARKERS = ('<!-- recipe reference: generated from the schema by '
                     '`python -m eac_fastai.training.reference README.md`; tested -->',
                     '<!-- end of the recipe reference -->')

def with_reference(text:str) -> str:
    "`text` (README) with the part between `REFERENCE_MARKERS` replaced by `recipe_reference()`."
    start, end = REFERENCE_MARKERS
    if start not in text or end not in text:
        raise ValueError(f"the text has no recipe-reference markers ({start} … {end})")
    head, _, rest = text.partition(start + '\n')
    _, _, tail = rest.partition(end)
    return head + start + '\n' + recipe_reference() + '\n' + end + tail

if __name__ == '__main__':
    import sys
    readme = Path(sys.argv[1])
    readme.write_text(with_reference(readme.read_text()))
