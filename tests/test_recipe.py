"Recipe validation: every problem reported at once, naming key and file; typed overrides; shipped recipes."
from pathlib import Path
import pytest, yaml
from typer.testing import CliRunner
from eac_fastai.cli import app
from eac_fastai.recipe import RecipeError, apply_overrides, load_recipe, recipe_yaml

RECIPES = sorted((Path(__file__).parent.parent/'recipes').glob('*.yaml'))

@pytest.fixture
def recipe(tmp_path):
    f = tmp_path/'r.yaml'
    f.write_text("method: eac\ndata: {demo: {n_train: 4}}\ntrain: {epochs: 2}\n")
    return f

def test_all_problems_reported_with_keys_and_file(recipe):
    with pytest.raises(RecipeError) as e:
        load_recipe(recipe, ['no_such_key=1', 'train.epochs=ten', 'eac.lamda=3', 'augment.erase.p=2', 'train.lr=-1', 'method=scn'])
    msg = str(e.value)
    assert str(recipe) in msg and '6 problem(s)' in msg
    for key in ('no_such_key: unknown key', 'train.epochs', 'eac.lamda: unknown key', 'augment.erase.p', 'train.lr', 'method'):
        assert key in msg

def test_ranges_and_cross_field_rules(recipe):
    for bad, words in [('train.epochs=0', 'train.epochs'), ('eac.lam=-1', 'eac.lam'), ('augment.erase.scale=[0.5,0.1]', 'low <= high'),
                       ('data.csv=x.csv', 'exactly one of data.csv and data.demo'), ('augment.gauss_noise.var=-3', 'var'),
                       ('train.wd_bn_bias=false', 'needs opt fastai_adam or fastai_sgd')]:
        with pytest.raises(RecipeError, match=words.replace('.', r'\.').replace('[', r'\[')): load_recipe(recipe, [bad])

def test_overrides_are_yaml_typed(recipe):
    r = load_recipe(recipe, ['train.epochs=3', 'train.lr=1e-3', 'augment.erase=null', 'augment.gauss_noise.p=0.25',
                             'data.classes=[a, b]', 'train.lr_find.num_it=20', 'train.lr=find'])
    assert r.train.epochs == 3 and r.train.lr == 'find' and r.augment.erase is None and r.augment.gauss_noise.p == 0.25
    assert r.data.classes == ['a', 'b'] and r.train.lr_find.num_it == 20
    assert load_recipe(recipe, ['train.lr=1e-3']).train.lr == 1e-3
    assert load_recipe(recipe, ['train.opt=fastai_adam', 'train.wd_bn_bias=false']).train.wd_bn_bias is False
    cfg = apply_overrides({'a': {'b': 1, 'c': 2}}, ['~a.b', 'a.d.e=x'])
    assert cfg == {'a': {'c': 2, 'd': {'e': 'x'}}}
    with pytest.raises(RecipeError, match='not of the form'): apply_overrides({}, ['justakey'])
    with pytest.raises(RecipeError, match='is a value, not a section'): apply_overrides({'a': 1}, ['a.b=2'])

def test_bad_files(tmp_path):
    with pytest.raises(RecipeError, match='not found'): load_recipe(tmp_path/'nope.yaml')
    (tmp_path/'bad.yaml').write_text('data: [unclosed\n')
    with pytest.raises(RecipeError, match='not valid YAML'): load_recipe(tmp_path/'bad.yaml')
    (tmp_path/'list.yaml').write_text('- 1\n- 2\n')
    with pytest.raises(RecipeError, match='mapping'): load_recipe(tmp_path/'list.yaml')

def test_resolved_recipe_round_trips(recipe, tmp_path):
    r = load_recipe(recipe, ['eac.lam=2.5'])
    (tmp_path/'resolved.yaml').write_text(recipe_yaml(r))
    assert load_recipe(tmp_path/'resolved.yaml') == r

@pytest.mark.parametrize('path', RECIPES, ids=lambda p: p.name)
def test_shipped_recipes_validate(path):
    r = CliRunner().invoke(app, ['validate', str(path)])
    assert r.exit_code == 0 and f'ok: {path}' in r.output

def test_rafdb_recipes_are_the_papers_settings():
    for name, method in (('rafdb_eac_r18.yaml', 'eac'), ('rafdb_baseline_r18.yaml', 'baseline')):
        r = load_recipe(Path(__file__).parent.parent/'recipes'/name)
        assert r.method == method and r.model.arch == 'resnet18' and r.model.weights == 'resnet18_msceleb.pth'
        assert (r.train.epochs, r.train.lr, r.train.opt, r.train.wd, r.train.schedule, r.train.gamma) == (60, 2e-4, 'adam', 1e-4, 'exp', 0.9)
        assert (r.data.bs, r.data.img_size, r.data.valid_split, r.data.drop_last) == (32, 224, 'test', False)
        assert r.data.classes == ['Surprise', 'Fear', 'Disgust', 'Happiness', 'Sadness', 'Anger', 'Neutral']
        e = r.augment.erase
        assert (e.p, e.scale, e.ratio, e.value) == (0.5, (0.02, 0.25), (0.3, 3.3), 0.) and r.augment.gauss_noise.var == 30
        assert r.seed == 0 and r.train.precision == 'fp32'
    assert load_recipe(Path(__file__).parent.parent/'recipes'/'rafdb_eac_r18.yaml').eac.lam == 5

def test_cli_validate_exit_codes(recipe):
    runner = CliRunner()
    r = runner.invoke(app, ['validate', str(recipe), 'no_such_key=1'])
    assert r.exit_code == 2 and 'no_such_key' in r.output and str(recipe) in r.output
    r = runner.invoke(app, ['validate', str(recipe), 'train.epochs=5'])
    assert r.exit_code == 0 and 'epochs: 5' in r.output
