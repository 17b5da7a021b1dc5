"Every method through the CLI, `sweep` grids and `table` on real runs of the demo data."
import json
from pathlib import Path
import pandas as pd, pytest
from typer.testing import CliRunner
from eac_fastai.cli import app
from eac_fastai.errors import UserError
from eac_fastai.methods import METHODS
from eac_fastai.training.recipe import RecipeError
from eac_fastai.training.sweep import parse_grid, sweep_plan
from eac_fastai.analysis.table import PAPER_TABLE1, collect_runs, results_table

QUICK = Path(__file__).parent.parent/'recipes'/'quickstart.yaml'
TINY = ['data.demo={n_train: 3, n_valid: 2, n_test: 1, size: 32}', 'data.img_size=32', 'data.bs=8', 'train.epochs=2',
        'eac.ramp=1']                                                    # the recipe's 5-epoch ramp fits in 2 epochs

def test_parse_grid_reads_values_as_yaml_lists():
    fixed, grid = parse_grid(['eac.lam=0.1,1,5', 'augment.erase.ratio=[0.1,10],[0.3,3.3]', 'train.epochs=3',
                              '~augment.crop', 'method=eac,scn'])
    assert fixed == ['train.epochs=3', '~augment.crop']
    assert grid == {'eac.lam': [0.1, 1, 5], 'augment.erase.ratio': [[0.1, 10], [0.3, 3.3]], 'method': ['eac', 'scn']}

def test_sweep_plan_validates_every_run_first():
    plan = sweep_plan(str(QUICK), ['eac.lam=0.1,1', 'augment.erase.p=0.5,1.0', 'train.epochs=1', 'eac.ramp=1'])
    assert len(plan) == 4 and {(p['recipe'].eac.lam, p['recipe'].augment.erase.p) for p in plan} == \
           {(0.1, .5), (0.1, 1.), (1, .5), (1, 1.)}
    with pytest.raises(RecipeError, match='augment.erase.p'): sweep_plan(str(QUICK), ['augment.erase.p=0.5,2'])
    matrix = Path(__file__).parent.parent/'recipes'/'table1.yaml'
    assert len(sweep_plan(f'{matrix}#rafdb-*-noise30-pretrained', ['eac.lam=1,5'])) == 5*2   # 5 methods × λ

@pytest.mark.parametrize('method', list(METHODS))
def test_every_method_trains_through_the_cli(method, settings_file, tmp_path):
    r = CliRunner().invoke(app, ['train', str(QUICK), f'method={method}', *TINY, '--out', str(tmp_path/'runs')])
    assert r.exit_code == 0, r.output
    run, = (tmp_path/'runs').iterdir()
    m = json.loads((run/'metrics.json').read_text())
    assert m['method'] == method and m['epochs'] == 2 and 0 <= m['last5_mean_accuracy'] <= 1
    # exactly 1 of 3 labels changed per class
    assert m['train_noise_rate'] == pytest.approx(1/3)
    assert (run/'scn_labels.csv').exists() == (method == 'scn')

def test_rul_with_relabelling_writes_its_labels(settings_file, tmp_path):
    r = CliRunner().invoke(app, ['train', str(QUICK), 'method=rul', 'rul.relabel=true', 'rul.relabel_epoch=1',
                                 'rul.relabel_margin=0.0', *TINY, '--out', str(tmp_path/'runs')])
    assert r.exit_code == 0, r.output
    run, = (tmp_path/'runs').iterdir()
    labels, history = pd.read_csv(run/'rul_labels.csv'), pd.read_csv(run/'history.csv')
    # margin 0: the images whose prediction is not their label are relabelled; the last epoch logs the share
    assert labels.relabelled.sum() > 0 and history.relabelled.iloc[-1] == pytest.approx(labels.relabelled.mean())
    assert (labels.rul_label != labels.given).sum() == labels.relabelled.sum()

def test_sweep_then_table(settings_file, tmp_path):
    "A sweep over the baseline and NLA (the newest method), its report and its table."
    r = CliRunner().invoke(app, ['sweep', str(QUICK), 'method=baseline,nla', 'nla.lam_jsd=0.3', *TINY,
                                 '--out', str(tmp_path/'runs')])
    assert r.exit_code == 0, r.output
    sweep, = (tmp_path/'runs').iterdir()
    df = pd.read_csv(sweep/'sweep.csv')
    assert (list(df.method) == ['baseline', 'nla'] and df.last5_mean_accuracy.between(0, 1).all()
            and len(list(sweep.iterdir())) == 3)
    for run, given in zip(df.run, df.final_flipped_as_given):                # each run's last memorisation figure
        assert given == pd.read_csv(Path(run)/'history.csv').flipped_as_given.iloc[-1]
    table = r.output[r.output.index('2 run(s)'):]                                   # the runs side by side, in %
    assert 'given' in table and all(f"{100*v:.1f}" in table
                                    for v in [*df.last5_mean_accuracy, *df.final_flipped_as_given])
    r = CliRunner().invoke(app, ['report', str(sweep)])
    page = (sweep/'report.html').read_text()
    assert r.exit_code == 0 and 'Accuracy and memorisation' in page and page.count('<img') == 2
    from eac_fastai.analysis.figures import runs_curves_figure
    fig = runs_curves_figure({m: pd.read_csv(Path(run)/'history.csv') for m, run in zip(df.method, df.run)})
    assert [len(ax.lines) for ax in fig.axes] == [2, 4]                       # accuracy; as given and as clean, per run
    r = CliRunner().invoke(app, ['table', str(tmp_path/'runs'), '--csv', str(tmp_path/'t.csv')])
    assert r.exit_code == 0, r.output
    t = pd.read_csv(tmp_path/'t.csv')
    assert (set(t.method) == {'baseline', 'nla'} and (t.dataset == 'demo').all() and (t.init == 'scratch').all()
            and t.paper.isna().all())
    # one run per cell; 1 of 3 labels noisy: 33% → 35
    assert t.variant.isna().all() and (t.noise == 35).all()
    assert 'demo' in r.output and 'baseline' in r.output
    r = CliRunner().invoke(app, ['sweep', str(QUICK), 'eac.lam=1,2', '--dry-run'])
    assert r.exit_code == 0 and '2 run(s)' in r.output

def test_table_puts_the_papers_number_beside_ours(tmp_path):
    for i, (tags, acc) in enumerate([(dict(dataset='rafdb', method='eac', noise='noise30', init='pretrained'), 0.85),
                                     (dict(dataset='rafdb', method='eac', noise='noise30', init='pretrained'), 0.83),
                                     (dict(dataset='ferplus', method='scn', noise='noise10', init='scratch'), 0.7),
                                     (dict(dataset='rafdb', method='eac', noise='noise30', init='pretrained'), 0.5)]):
        d = tmp_path/f'run{i}'; d.mkdir()
        (d/'recipe.yaml').write_text(json.dumps(dict(
            method=tags['method'], tags=tags, seed=i, data={'csv': 'x/y.csv'}, eac={'lam': 1 if i == 3 else 5},
            model={'weights': 'w.pth' if tags['init'] == 'pretrained' else None})))
        (d/'metrics.json').write_text(json.dumps(dict(last5_mean_accuracy=acc, final_accuracy=acc - 0.01,
                                                      best_accuracy=acc + 0.02, epochs=60)))
    t = results_table(collect_runs([tmp_path]))
    row = t[(t.dataset == 'rafdb') & (t.variant == 'eac.lam=5')].iloc[0]           # two seeds of one recipe: averaged
    lam1 = t[t.variant == 'eac.lam=1'].iloc[0]
    # another recipe in the cell is kept apart
    assert lam1.runs == 1 and lam1.last5 == 50
    assert (row.runs == 2 and row.last5 == pytest.approx(84.)
            and row.paper == PAPER_TABLE1[('eac', 'pretrained', 30, 'rafdb')] == 84.42)
    assert t[t.dataset == 'ferplus'].iloc[0].paper == 78.83
    assert list(t.init) == ['pretrained', 'pretrained', 'scratch']                  # the paper's order
    # the paper's number against ours under its protocol
    assert (row.final, row.best, row['diff']) == pytest.approx((83., 86., 84. - 84.42))
    r = CliRunner().invoke(app, ['table', str(tmp_path), '--protocol', 'best', '--protocol', 'last5'])
    assert r.exit_code == 0, r.output
    # both protocols' numbers; the paper's only beside the last-5 mean of each of the two eac variants
    assert '86.00' in r.output and '84.00' in r.output and r.output.count('(84.42)') == 2
    assert 'best epoch on the evaluation split' in r.output
    (tmp_path/'run0'/'metrics.json').write_text('[]')
    with pytest.raises(UserError, match='needs last5_mean_accuracy'): collect_runs([tmp_path/'run0'])
    (tmp_path/'empty').mkdir()
    with pytest.raises(UserError, match='no finished run'): collect_runs([tmp_path/'empty'])

def test_recipe_sampler_reaches_the_dataloader(settings_file):
    from fastai.callback.data import WeightedDL
    from eac_fastai.training.recipe import load_recipe
    from eac_fastai.training.build import recipe_dataloaders
    assert isinstance(recipe_dataloaders(load_recipe(QUICK, [*TINY, 'data.sampler=balanced'])).train, WeightedDL)
    assert not isinstance(recipe_dataloaders(load_recipe(QUICK, TINY)).train, WeightedDL)

def test_bad_sweep_arguments_are_named():
    for arg, words in (('eac.lam=[1,', 'cannot read the values'), ('eac.lam=', 'no value after =')):
        with pytest.raises(RecipeError, match=words): parse_grid([arg])
    r = CliRunner().invoke(app, ['sweep', str(QUICK), 'eac.lam=-1,1', '--dry-run'])
    assert r.exit_code == 2 and 'eac.lam' in r.output
