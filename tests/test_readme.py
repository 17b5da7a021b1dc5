"README stays true to the code: its two opening commands, the recipe reference is the schema's."
import re
from pathlib import Path
from eac_fastai.training.reference import REFERENCE_MARKERS, recipe_reference, with_reference

ROOT = Path(__file__).parent.parent
README = ROOT/'README.md'

def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    """The first two code blocks: set up and train the quickstart (baseline and EAC); set up and test, exactly the line
    `.ci/run` runs."""
    train, test = re.findall(r"```bash\n(.*?)\n```", README.read_text(), re.S)[:2]
    assert 'pip install -e' in train and train.endswith('eac-fastai sweep recipes/quickstart.yaml method=baseline,eac')
    assert 'pip install -e ".[dev]"' in test and test.endswith('.venv/bin/python -m pytest')
    assert test in (ROOT/'.ci'/'run').read_text().splitlines()

def test_readme_recipe_reference_matches_the_schema():
    text = README.read_text()
    assert all(m in text for m in REFERENCE_MARKERS)
    assert with_reference(text) == text, \
        "README's recipe reference is stale: run `.venv/bin/python -m eac_fastai.training.reference README.md`"

def test_the_reference_lists_every_key_with_its_default():
    ref = recipe_reference()
    for key, default in [('data.cache', 'false'), ('eac.lam', '5'), ('train.resumable', 'true'),
                         ('augment.erase.ratio', '[0.3, 3.3]'), ('train.lr_find.suggestion', 'valley')]:
        assert f"| `{key}` | `{default}` |" in ref
