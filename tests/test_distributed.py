"Multi-process training on the CPU (gloo) through fastai's DistributedTrainer: real torchrun processes."
import json, os, subprocess, sys
from pathlib import Path
import pandas as pd, pytest
from typer.testing import CliRunner
from eac_fastai.cli import app

RECIPE = ("method: {method}\nseed: 0\n"
          "data: {{demo: {{n_train: 6, n_valid: 3, n_test: 2, size: 32}}, img_size: 32, bs: 8}}\n"
          "model: {{arch: resnet10_narrow}}\ntrain: {{epochs: 2, lr: 2.0e-3, schedule: one_cycle, device: cpu}}\n")

def _recipe(tmp_path, method='eac'):
    f = tmp_path/f'{method}.yaml'; f.write_text(RECIPE.format(method=method)); return f

def _torchrun(*args, env=None):
    return subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node=2',
                           *map(str, args)],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS='1', **(env or {})))

@pytest.mark.parametrize('method', ['eac', 'nla'])   # both run their mirror's forward apart from DDP's wrapper
def test_both_ranks_step_on_their_own_images_and_stay_in_sync(tmp_path, settings_file, method):
    r = _torchrun(Path(__file__).parent/'scripts'/'ddp_probe.py', _recipe(tmp_path, method), tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [json.loads((tmp_path/f'rank{i}.json').read_text()) for i in (0, 1)]
    assert all(p['world'] == 2 for p in ranks)
    # 42 images, 21 a process, batches of 8: 3 steps an epoch
    assert ranks[0]['steps'] == ranks[1]['steps'] == 2*3
    # DistributedDataParallel kept the weights identical
    assert ranks[0]['after'] == ranks[1]['after']
    assert ranks[0]['after'] != ranks[0]['before']                   # and they trained
    first_epoch = [set(p['seen'][:21]) for p in ranks]
    # disjoint halves of the data
    assert not first_epoch[0] & first_epoch[1] and len(first_epoch[0] | first_epoch[1]) == 42

def test_cli_nproc_trains_one_run_with_metrics_over_the_whole_evaluation_set(tmp_path, settings_file):
    r = CliRunner().invoke(app, ['train', str(_recipe(tmp_path)), '--nproc', '2', '--out', str(tmp_path/'runs')])
    assert r.exit_code == 0, r.output
    (run,) = (tmp_path/'runs').iterdir()                               # rank 0 alone made and wrote it
    m = json.loads((run/'metrics.json').read_text())
    assert m['epochs'] == 2 and m['n_valid'] == 21 and not (run/'models'/'resume.pth').exists()
    preds = pd.read_csv(run/'preds_valid.csv')
    # 21 images, none twice
    assert len(preds) == 21 and m['final_accuracy'] == pytest.approx((preds.pred == preds.label).mean())

def test_what_cannot_run_in_several_processes_is_refused(tmp_path, settings_file):
    cli = CliRunner()
    r = cli.invoke(app, ['train', str(_recipe(tmp_path, 'scn')), '--nproc', '2', '--out', str(tmp_path/'runs')])
    assert r.exit_code == 2 and 'method scn cannot train in several processes' in r.output
    r = cli.invoke(app, ['train', str(_recipe(tmp_path, 'rul')), 'rul.relabel=true', '--nproc', '2',
                         '--out', str(tmp_path/'runs')])
    assert r.exit_code == 2 and 'method rul cannot train in several processes' in r.output
    r = cli.invoke(app, ['train', '--resume', str(tmp_path), '--nproc', '2'])
    assert r.exit_code == 2 and 'drop --nproc' in r.output
    assert not (tmp_path/'runs').exists()
