"README stays true to the code: the recipe reference is the schema's."
from pathlib import Path
from eac_fastai.recipe import REFERENCE_MARKERS, recipe_reference, with_reference

README = Path(__file__).parent.parent/'README.md'

def test_readme_recipe_reference_matches_the_schema():
    text = README.read_text()
    assert all(m in text for m in REFERENCE_MARKERS)
    assert with_reference(text) == text, "README's recipe reference is stale: run `.venv/bin/python -m eac_fastai.recipe README.md`"

def test_the_reference_lists_every_key_with_its_default():
    ref = recipe_reference()
    for key, default in [('data.cache', 'false'), ('eac.lam', '5'), ('train.resumable', 'true'), ('augment.erase.ratio', '[0.3, 3.3]'),
                         ('train.lr_find.suggestion', 'valley')]:
        assert f"| `{key}` | `{default}` |" in ref
