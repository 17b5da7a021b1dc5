"The CLI end to end on generated demo data: real processes, real files, settings.ini paths."
import json, os, subprocess, sys
from pathlib import Path
import pandas as pd, pytest, torch
from typer.testing import CliRunner
from eac_fastai.cli import app
from eac_fastai.training.recipe import load_recipe

TINY = ("method: {method}\nseed: 0\n"
        "data: {{demo: {{n_train: 6, n_valid: 3, n_test: 2, size: 32}}, img_size: 32, bs: 16}}\n"
        "train: {{epochs: 2, lr: 1.0e-3, schedule: exp, device: cpu}}\n")

@pytest.fixture
def tiny_recipe(tmp_path, settings_file):
    f = tmp_path/'tiny.yaml'; f.write_text(TINY.format(method='eac')); return f

def test_train_demo_end_to_end_subprocess(tiny_recipe, tmp_path):
    cli = Path(sys.executable).parent/'eac-fastai'
    r = subprocess.run([str(cli), 'train', str(tiny_recipe), 'eac.lam=2', '--out', str(tmp_path/'runs')],
                       capture_output=True, text=True, env=os.environ, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    for col in ('epoch', 'train_loss', 'valid_loss', 'accuracy', 'train_ce', 'train_consistency'):
        assert col in r.stdout
    # no fastprogress bars
    assert '|█' not in r.stdout and '%' not in r.stdout
    (run,) = (tmp_path/'runs').iterdir()
    assert run.name.startswith('tiny-')
    # demo made under settings' data
    assert (tmp_path/'data').is_dir() and list((tmp_path/'data').glob('demo-*/labels.csv'))
    m = json.loads((run/'metrics.json').read_text())
    h = pd.read_csv(run/'history.csv')
    assert len(h) == 2 and m['epochs'] == 2
    assert (m['final_accuracy'] == pytest.approx(h.accuracy.iloc[-1]) and
            m['best_accuracy'] == pytest.approx(h.accuracy.max()))
    assert m['last5_mean_accuracy'] == pytest.approx(h.accuracy.mean())
    # resolved, re-runnable
    assert load_recipe(run/'recipe.yaml').eac.lam == 2
    env = json.loads((run/'env.json').read_text())
    assert env['torch'] == torch.__version__ and env['device'] == 'cpu'
    preds = pd.read_csv(run/'preds_valid.csv')
    assert len(preds) == 21 and {'image', 'label', 'clean_label', 'pred', 'prob_Anger'} <= set(preds.columns)
    assert preds.filter(like='prob_').sum(axis=1).round(4).eq(1).all()
    for ck in ('best', 'last'): assert (run/'models'/f'{ck}.pth').is_file()
    last = torch.load(run/'models'/'last.pth', weights_only=True)
    assert set(last) == {'model', 'opt'}

def test_baseline_and_lr_find(tiny_recipe, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ['train', str(tiny_recipe), 'method=baseline', 'train.epochs=1', '--out', str(tmp_path/'b')])
    assert r.exit_code == 0, r.output
    (run,) = (tmp_path/'b').iterdir()
    h = pd.read_csv(run/'history.csv')
    assert 'train_consistency' not in h.columns and json.loads((run/'metrics.json').read_text())['method'] == 'baseline'
    r = runner.invoke(app, ['lr-find', str(tiny_recipe), 'train.lr_find.num_it=20', '--out', str(tmp_path/'l')])
    assert r.exit_code == 0, r.output
    (run,) = (tmp_path/'l').iterdir()
    found = json.loads((run/'lr_find.json').read_text())
    assert found['lr'] > 0 and (run/'lr_find.png').stat().st_size > 1000 and len(found['lrs']) == len(found['losses'])
    r = runner.invoke(app, ['train', str(tiny_recipe), 'train.lr=find', 'train.lr_find.num_it=20', 'train.epochs=1',
                            '--out', str(tmp_path/'f')])
    assert r.exit_code == 0, r.output
    (run,) = (tmp_path/'f').iterdir()
    assert json.loads((run/'metrics.json').read_text())['lr'] == json.loads((run/'lr_find.json').read_text())['lr']

def test_user_errors_exit_2_and_write_nothing(tiny_recipe, tmp_path, settings_file):
    runner, out = CliRunner(), tmp_path/'runs'
    for args, words in [(['no_such_key=1'], 'no_such_key'),
                        (['~data.demo', 'data.csv=missing.csv'], 'missing.csv: label CSV not found'),
                        (['model.weights=nope.pth'], 'nope.pth: weights file not found'),
                        (['train.precision=fp16', 'train.device=cpu'], 'needs a CUDA device')]:
        r = runner.invoke(app, ['train', str(tiny_recipe), *args, '--out', str(out)])
        assert r.exit_code == 2 and words in r.output and 'Traceback' not in r.output, r.output
    assert not out.exists() or not any(out.iterdir())
    r = runner.invoke(app, ['validate', str(tmp_path/'none.yaml')])
    assert r.exit_code == 2 and 'recipe file not found' in r.output

def test_more_bad_input_exit_2(tiny_recipe, tmp_path, demo_csv):
    runner = CliRunner()
    afile = tmp_path/'afile'; afile.write_text('x')
    r = runner.invoke(app, ['train', str(tiny_recipe), '--out', str(afile/'runs')])
    assert r.exit_code == 2 and 'is a file, not a folder' in r.output
    # refused before the demo data was made
    assert not (tmp_path/'data').exists()
    r = runner.invoke(app, ['train', str(tiny_recipe), 'data.bs=64', 'data.drop_last=true', '--out', str(tmp_path/'r')])
    assert r.exit_code == 2 and 'no training batch' in r.output and not (tmp_path/'r').exists()
    import pandas as pd, shutil
    shutil.copytree(demo_csv.parent, tmp_path/'demo')
    (tmp_path/'demo'/pd.read_csv(demo_csv).image[4]).write_text('not a png')
    r = runner.invoke(app, ['train', str(tiny_recipe), '~data.demo', f"data.csv={tmp_path/'demo'/'labels.csv'}",
                            '--out', str(tmp_path/'r')])
    assert (r.exit_code == 2 and 'not readable images (corrupt or truncated), e.g. line 6' in r.output and
            not (tmp_path/'r').exists())
    (tmp_path/'tabs.yaml').write_text('data:\n\tdemo: {}\n')
    r = runner.invoke(app, ['validate', str(tmp_path/'tabs.yaml')])
    assert r.exit_code == 2 and 'tabs.yaml:2: not valid YAML' in r.output and 'not tabs' in r.output
    r = runner.invoke(app, ['make-noise', str(demo_csv), '-o', str(tmp_path/'n.csv'), '--splits', 'trian'])
    assert r.exit_code == 2 and 'no rows with split trian' in r.output and not (tmp_path/'n.csv').exists()
    r = runner.invoke(app, ['make-noise', str(demo_csv), '-o', str(afile/'n.csv')])
    assert r.exit_code == 2 and 'is a file, not a folder' in r.output
    r = runner.invoke(app, ['make-demo', str(tmp_path/'d'), '--noise', '1.5', '--size', '0'])
    assert r.exit_code == 2 and '--noise' in r.output and '--size' in r.output and not (tmp_path/'d').exists()

def test_version():
    from eac_fastai import __version__
    assert CliRunner().invoke(app, ['--version']).output.strip() == f'eac-fastai {__version__}'

@pytest.mark.slow
def test_quickstart_shows_the_baseline_memorising_and_eac_not(tmp_path, settings_file):
    """README's first command as shipped, with issue 16's targets: the CE baseline fits ≥ 40% of the flipped training
    labels, EAC ≤ 10%, and EAC's last-5 is ≥ 5 points above the baseline's (measured, seed 0, two threads: 86.3% and
    4.4% fitted; last-5 77.2% and 92.9%)."""
    recipe = Path(__file__).parent.parent/'recipes'/'quickstart.yaml'
    r = CliRunner().invoke(app, ['sweep', str(recipe), 'method=baseline,eac', '--out', str(tmp_path/'runs')])
    assert r.exit_code == 0, r.output
    (sweep,) = (tmp_path/'runs').iterdir()
    df = pd.read_csv(sweep/'sweep.csv').set_index('method')
    b, e = df.loc['baseline'], df.loc['eac']
    assert (b.epochs, e.epochs) == (18, 18) and b.final_flipped_as_given >= 0.4 and e.final_flipped_as_given <= 0.1
    assert e.last5_mean_accuracy >= b.last5_mean_accuracy + 0.05

@pytest.mark.slow
def test_the_papers_lambda_trains_on_the_demo_only_with_the_options(tmp_path, settings_file):
    """λ 5 from scratch on the quickstart's faces: the official term collapses to chance (the features shrink; measured,
    seed 0, two threads, 8 epochs: 14.8% final), the normalized term with a 5-epoch ramp learns (88.5% last-5)."""
    recipe = str(Path(__file__).parent.parent/'recipes'/'quickstart.yaml')
    def train(name, *overrides):
        r = CliRunner().invoke(app, ['train', recipe, 'eac.lam=5', *overrides, '--out', str(tmp_path/name)])
        assert r.exit_code == 0, r.output
        (metrics,) = (tmp_path/name).glob('*/metrics.json')
        return json.loads(metrics.read_text())
    official = train('official', 'eac.ramp=0', 'train.epochs=8')
    assert official['final_accuracy'] <= 0.3                            # chance: 1/7
    options = train('options', 'eac.ramp=5', 'eac.consistency=normalized')
    assert options['last5_mean_accuracy'] >= 0.6
