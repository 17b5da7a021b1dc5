"Recipe validation: every problem reported at once, naming key and file; typed overrides; shipped recipes."
import re
from pathlib import Path
import pytest
from typer.testing import CliRunner
from eac_fastai.cli import app
from eac_fastai.training.recipe import (RecipeError, apply_overrides, load_recipe, load_recipes, recipe_cells,
                                        recipe_yaml)

ROOT = Path(__file__).parent.parent/'recipes'
RECIPES = sorted(ROOT.glob('*.yaml'))

@pytest.fixture
def recipe(tmp_path):
    f = tmp_path/'r.yaml'
    f.write_text("method: eac\ndata: {demo: {n_train: 4}}\ntrain: {epochs: 2}\n")
    return f

def test_all_problems_reported_with_keys_and_file(recipe):
    with pytest.raises(RecipeError) as e:
        load_recipe(recipe, ['no_such_key=1', 'train.epochs=ten', 'eac.lamda=3', 'augment.erase.p=2', 'train.lr=-1',
                             'method=dmue'])
    msg = str(e.value)
    assert str(recipe) in msg and '6 problem(s)' in msg
    for key in ('no_such_key: unknown key', 'train.epochs', 'eac.lamda: unknown key', 'augment.erase.p', 'train.lr',
                'method'):
        assert key in msg

def test_ranges_and_cross_field_rules(recipe):
    for bad, words in [('train.epochs=0', 'train.epochs'), ('eac.lam=-1', 'eac.lam'),
                       ('augment.erase.scale=[0.5,0.1]', 'low <= high'),
                       ('data.csv=x.csv', 'exactly one of data.csv and data.demo'), ('augment.basic.var=-3', 'var'),
                       ('augment.basic.ops=[flip]', 'remove flip'),
                       ('train.wd_bn_bias=false', 'needs opt fastai_adam or fastai_sgd'),
                       ('augment.flip.p=0.5', 'augment.flip: method eac'),
                       ('train.eval_subset.n=0', 'train.eval_subset.n')]:
        with pytest.raises(RecipeError, match=words.replace('.', r'\.').replace('[', r'\[')): load_recipe(recipe, [bad])

def test_overrides_are_yaml_typed(recipe):
    r = load_recipe(recipe, ['train.epochs=3', 'train.lr=1e-3', 'augment.erase=null', 'augment.basic.p=0.25',
                             'data.classes=[a, b]', 'train.lr_find.num_it=20', 'train.lr=find'])
    assert (r.train.epochs == 3 and r.train.lr == 'find' and r.augment.erase is None and r.augment.basic.p == 0.25
            and r.augment.basic.ops == ['noise'])
    assert r.data.classes == ['a', 'b'] and r.train.lr_find.num_it == 20
    assert load_recipe(recipe, ['train.lr=1e-3']).train.lr == 1e-3
    assert load_recipe(recipe, ['train.opt=fastai_adam', 'train.wd_bn_bias=false']).train.wd_bn_bias is False
    cfg = apply_overrides({'a': {'b': 1, 'c': 2}}, ['~a.b', 'a.d.e=x'])
    assert cfg == {'a': {'c': 2, 'd': {'e': 'x'}}}
    with pytest.raises(RecipeError, match='not of the form'): apply_overrides({}, ['justakey'])
    with pytest.raises(RecipeError, match='is a value, not a section'): apply_overrides({'a': 1}, ['a.b=2'])

def test_method_defaults_of_the_augmentation(recipe, tmp_path):
    """AC erases nothing unless the recipe says so; the erasing fill may be one value per channel, and reaches the
    callback."""
    from eac_fastai.training.build import recipe_method
    assert load_recipe(recipe, ['method=ac']).augment.erase is None and load_recipe(recipe).augment.erase.p == 0.5
    assert load_recipe(recipe, ['method=ac', 'augment.erase.p=0.3']).augment.erase.p == 0.3
    r = load_recipe(recipe, ['augment.erase.value=[0.0, 0.5, -1]'])
    assert recipe_method(r).erase.value == (0.0, 0.5, -1.0)
    (tmp_path/'resolved.yaml').write_text(recipe_yaml(r))
    assert load_recipe(tmp_path/'resolved.yaml') == r
    with pytest.raises(RecipeError, match=r'augment\.erase\.value'): load_recipe(recipe, ['augment.erase.value=[0, 1]'])

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
    assert r.exit_code == 0 and 'ok:' in r.output and str(path) in r.output

def test_every_table1_cell_is_a_valid_recipe_with_its_methods_settings():
    recipes = load_recipes(ROOT/'table1.yaml')
    assert len(recipes) == 5*3*3*2 and list(recipes) == recipe_cells(ROOT/'table1.yaml')
    for ref, r in recipes.items():
        dataset, method, noise, init = ref.partition('#')[2].split('-')
        assert r.tags == dict(dataset=dataset, method=method, noise=noise, init=init) and r.method == method
        assert (r.data.csv == f'{dataset}/{dataset}_{noise}.csv'
                and (r.model.weights == 'resnet18_msceleb.pth') == (init == 'pretrained'))
        assert r.data.classes == ['Surprise', 'Fear', 'Disgust', 'Happiness', 'Sadness', 'Anger', 'Neutral']
        assert r.data.sampler == ('balanced' if dataset == 'affectnet' else 'shuffle') and r.data.valid_split == 'test'
        official = {'baseline': (32, 2e-4, 60), 'eac': (32, 2e-4, 60), 'scn': (64, 1e-3, 70),
                    'rul': (64, 2e-4, 60), 'nla': (32, 1e-4, 60)}[method]
        assert (r.data.bs, r.train.lr, r.train.epochs) == official and r.train.schedule == 'exp' and r.train.wd == 1e-4
        assert r.augment.basic.ops == (['flip', 'noise'] if method in ('scn', 'rul') else ['noise'])
        nla = method == 'nla'
        assert (r.augment.flip is not None, r.augment.erase.scale[1]) == ((True, 0.3) if nla else (False, .25))
    assert load_recipe(f"{ROOT/'table1.yaml'}#rafdb-eac-noise30-pretrained").model_dump(exclude={'tags'}) == \
           load_recipe(ROOT/'rafdb_eac_r18.yaml').model_dump(exclude={'tags'})

def test_cifar_matrix_is_the_supplementarys_setting():
    cells = recipe_cells(ROOT/'cifar.yaml')
    assert len(cells) == 2*3*3
    r = load_recipe(f"{ROOT/'cifar.yaml'}#cifar100-scn-noise20")
    assert (r.model.arch, r.model.weights, r.data.bs, r.train.opt, r.train.lr, r.train.wd, r.train.schedule,
            r.train.epochs) == ('resnet18_cifar', None, 512, 'sgd', 0.1, 5e-4, 'cosine', 200)
    assert r.augment.crop.padding == 4 and r.augment.flip.p == 0.5 and r.augment.basic is None
    assert r.augment.erase.p == 0.5
    assert load_recipe(f"{ROOT/'cifar.yaml'}#cifar100-eac-noise20").augment.basic is None
    assert recipe_cells(f"{ROOT/'cifar.yaml'}#tinyimagenet-*-noise30") == \
           [f"{ROOT/'cifar.yaml'}#tinyimagenet-{m}-noise30" for m in ('baseline', 'scn', 'eac')]

def test_bases_matrices_and_their_errors(tmp_path):
    (tmp_path/'a.yaml').write_text("data: {demo: {n_train: 4}, bs: 8}\ntrain: {epochs: 3, lr: 0.1}\n")
    (tmp_path/'b.yaml').write_text("base: a.yaml\ntrain: {epochs: 5}\n")
    r = load_recipe(tmp_path/'b.yaml')
    # sections merge key by key, the file wins
    assert (r.train.epochs, r.train.lr, r.data.bs) == (5, 0.1, 8)
    (tmp_path/'m.yaml').write_text("base: b.yaml\nmatrix:\n"
                                   "  size: {small: {data.img_size: 32}, big: {data.img_size: 64, base: c.yaml}}\n"
                                   "  method: {eac: {method: eac, data.demo.seed: 1}, "
                                   "scn: {base: d.yaml, train.epochs: 9}}\n")
    (tmp_path/'c.yaml').write_text("train: {epochs: 7}\ndata: {bs: 4}\n")
    (tmp_path/'d.yaml').write_text("method: scn\ndata: {bs: 16}\n")
    assert [c.partition('#')[2] for c in recipe_cells(tmp_path/'m.yaml')] == \
           ['small-eac', 'small-scn', 'big-eac', 'big-scn']
    big_scn = load_recipe(f"{tmp_path/'m.yaml'}#big-scn")
    # later axes win
    assert (big_scn.data.img_size, big_scn.data.bs, big_scn.train.epochs, big_scn.method) == (64, 16, 9, 'scn')
    assert (load_recipe(f"{tmp_path/'m.yaml'}#big-eac").train.epochs == 7
            and load_recipe(f"{tmp_path/'m.yaml'}#small-eac").data.demo.seed == 1)
    assert load_recipe(f"{tmp_path/'m.yaml'}#small-eac").tags == {'size': 'small', 'method': 'eac'}
    # the path as the user wrote it, not normalised
    assert load_recipe(f"{tmp_path}/./m.yaml#big-scn") == big_scn
    for ref, words in [(tmp_path/'m.yaml', 'is a matrix of 4 recipes'),
                       (f"{tmp_path/'m.yaml'}#huge-eac", "no cell 'huge-eac'"),
                       (f"{tmp_path/'m.yaml'}#big-*", 'is a pattern'),
                       (f"{tmp_path/'b.yaml'}#x", 'is not a matrix')]:
        with pytest.raises(RecipeError, match=words): load_recipe(ref)
    (tmp_path/'loop.yaml').write_text("base: loop2.yaml\n"); (tmp_path/'loop2.yaml').write_text("base: loop.yaml\n")
    with pytest.raises(RecipeError, match='includes itself'): load_recipe(tmp_path/'loop.yaml')
    (tmp_path/'nobase.yaml').write_text("base: missing.yaml\n")
    with pytest.raises(RecipeError, match='missing.yaml: recipe file not found'): load_recipe(tmp_path/'nobase.yaml')
    with pytest.raises(RecipeError, match=r'(?s)small-scn.*train.epochs.*big-scn.*train.epochs'):
        load_recipes(tmp_path/'m.yaml', ['train.epochs=0'])

def test_rafdb_recipes_are_the_papers_settings():
    for name, method in (('rafdb_eac_r18.yaml', 'eac'), ('rafdb_baseline_r18.yaml', 'baseline'),
                         ('rafdb_ac_r18.yaml', 'ac')):
        r = load_recipe(Path(__file__).parent.parent/'recipes'/name)
        assert r.method == method and r.model.arch == 'resnet18' and r.model.weights == 'resnet18_msceleb.pth'
        assert (r.train.epochs, r.train.lr, r.train.opt, r.train.wd, r.train.schedule, r.train.gamma) == \
               (60, 2e-4, 'adam', 1e-4, 'exp', 0.9)
        assert (r.data.bs, r.data.img_size, r.data.valid_split, r.data.drop_last) == (32, 224, 'test', False)
        assert r.data.classes == ['Surprise', 'Fear', 'Disgust', 'Happiness', 'Sadness', 'Anger', 'Neutral']
        e = r.augment.erase
        assert method == 'ac' and e is None or (e.p, e.scale, e.ratio, e.value) == (0.5, (0.02, 0.25), (0.3, 3.3), 0.)
        assert r.augment.basic.var == 30 and r.augment.basic.ops == ['noise']
        assert r.seed == 0 and r.train.precision == 'fp32'
    assert load_recipe(Path(__file__).parent.parent/'recipes'/'rafdb_eac_r18.yaml').eac.lam == 5

def test_cli_validate_exit_codes(recipe):
    runner = CliRunner()
    r = runner.invoke(app, ['validate', str(recipe), 'no_such_key=1'])
    assert r.exit_code == 2 and 'no_such_key' in r.output and str(recipe) in r.output
    r = runner.invoke(app, ['validate', str(recipe), 'train.epochs=5'])
    assert r.exit_code == 0 and 'epochs: 5' in r.output

@pytest.mark.parametrize('method', ['eac', 'ac'])
@pytest.mark.parametrize('override, words', [('ramp=-1', 'ramp: Input should be greater than or equal to 0'),
                                             ('ramp=13', r'ramp: 13 epochs is longer than train.epochs \(12\); '
                                                         r'give at most 12'),
                                             ('consistency=relativ',
                                              "consistency: Input should be 'mse', 'relative' or 'normalized'")])
def test_validate_refuses_a_bad_consistency_option(recipe, method, override, words):
    "An out-of-range ramp or an unknown consistency: exit 2 naming the key; in range: accepted."
    runner = CliRunner()
    r = runner.invoke(app, ['validate', str(recipe), f'method={method}', 'train.epochs=12', f'{method}.{override}'])
    assert r.exit_code == 2 and re.search(f'{method}.{words}', r.output), r.output
    r = runner.invoke(app, ['validate', str(recipe), f'method={method}', 'train.epochs=12', f'{method}.ramp=12',
                            f'{method}.consistency=normalized'])
    assert r.exit_code == 0 and 'ramp: 12.0' in r.output

@pytest.mark.parametrize('axis, words', [("{eac: {data.csv: '{dataset}/x.csv'}}",
                                          r"names \{'dataset'\}, which is not an axis"),
                                         ("{eac: 'method=eac'}", 'must be a mapping of recipe keys'),
                                         ("{e-ac: {method: eac}}", "cannot contain one"),
                                         ("{eac: {data.csv: 'a{b'}}", 'write a literal brace')])
def test_malformed_matrices_are_named(tmp_path, axis, words):
    (tmp_path/'m.yaml').write_text(f"data: {{demo: {{n_train: 4}}}}\nmatrix:\n  method: {axis}\n")
    with pytest.raises(RecipeError, match=words): load_recipes(tmp_path/'m.yaml')

def test_yaml_anchors_and_merge_keys_load_and_a_key_given_twice_is_refused(tmp_path):
    f = tmp_path/'r.yaml'
    f.write_text("data:\n  <<: {bs: 8, img_size: 32}\n  demo: {}\n")
    r = load_recipe(f)
    assert r.data.bs == 8 and r.data.img_size == 32
    f.write_text("data:\n  demo: {}\n  bs: 8\n  bs: 16\n")
    with pytest.raises(RecipeError, match=r"r.yaml:4: key 'bs' is given twice \(lines 3 and 4\)"): load_recipe(f)
