"""Crash-safe checkpoints and `eac-fastai train --resume`: an interrupted run continues to the same result as an
uninterrupted one."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest, torch
from fastai.callback.core import Callback
from typer.testing import CliRunner
from eac_fastai.training.checkpoint import RESUME
from eac_fastai.cli import app
from eac_fastai.training.recipe import load_recipe
from eac_fastai.training.runs import RunLock, load_run
from eac_fastai.training.fit import resume_run, train_recipe
from eac_fastai.models.weights import load_torch_file

RECIPE = ("method: {method}\nseed: 0\n"
          "data: {{demo: {{n_train: {n}, n_valid: 3, n_test: 2, size: 32}}, img_size: 32, bs: 16}}\n"
          "model: {{arch: resnet10_narrow}}\ntrain: {{epochs: 4, lr: 2.0e-3, schedule: one_cycle, device: cpu}}\n")

def _recipe(tmp_path, method='eac', n=6, extra=''):
    f = tmp_path/f'{method}.yaml'; f.write_text(RECIPE.format(method=method, n=n) + extra); return f

def _same_result(a:Path, b:Path):
    "Equal histories (every column but the wall time) and metrics."
    ha, hb = (pd.read_csv(r/'history.csv').drop(columns='time') for r in (a, b))
    pd.testing.assert_frame_equal(ha, hb)
    ma, mb = (json.loads((r/'metrics.json').read_text()) for r in (a, b))
    assert ma == mb

class Crash(Exception): pass
class CrashAt(Callback):
    "Raise in the middle of epoch `epoch` (after a few batches), as a crash would."
    def __init__(self, epoch): self.at = epoch
    def after_batch(self):
        if self.training and self.epoch == self.at and self.iter == 1: raise Crash('a crash mid-epoch')

# early stopping that ends the run after the cut (epoch 2) only if the epochs waited before it carry over
STOP = ['train.epochs=8', 'train.lr=1.0e-9', 'train.accumulate=2', 'train.early_stop={patience: 2, min_delta: 0.5}']

@pytest.mark.parametrize('method,extra,overrides', [('eac', '', ['train.loggers=[tensorboard]']),
                                                    ('scn', 'scn: {relabel_epoch: 2, margin2: 0.0}\n', []),
                                                    ('nla', '', []),   # its Gaussian's schedule by epoch
                                                    ('baseline', '', STOP)], ids=['eac', 'scn', 'nla', 'early-stop'])
def test_resume_after_a_crash_gives_the_uninterrupted_result(tmp_path, settings_file, monkeypatch, method, extra,
                                                             overrides):
    """SCN's relabels, the one-cycle position, the generators, the smoothed loss and early stopping all carry over; the
    TensorBoard log of the resumed run reads as the uninterrupted one's (the cut epoch's batches dropped)."""
    r = load_recipe(_recipe(tmp_path, method, extra=extra), overrides)
    whole = train_recipe(r, tmp_path/'whole')
    from fastai.learner import Learner
    fit = Learner.fit
    def crashing_fit(self, *args, cbs=None, **kwargs): return fit(self, *args, cbs=[*(cbs or []), CrashAt(2)], **kwargs)
    monkeypatch.setattr(Learner, 'fit', crashing_fit)
    with pytest.raises(Crash): train_recipe(r, tmp_path/'cut')
    monkeypatch.setattr(Learner, 'fit', fit)
    (cut,) = (tmp_path/'cut').iterdir()
    assert load_torch_file(cut/'models'/RESUME)['epoch'] == 1 and not (cut/'metrics.json').exists()
    assert resume_run(cut) == cut
    _same_result(whole, cut)
    if 'train.loggers=[tensorboard]' in overrides:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        logs = [EventAccumulator(str(r/'tensorboard')) for r in (whole, cut)]
        for tb in logs: tb.Reload()
        for tag in ('train_loss', 'accuracy', 'train_consistency'):
            (a, b) = ([(e.step, e.value) for e in tb.Scalars(tag)] for tb in logs)
            assert a == b and len({step for step, _ in b}) == len(b), tag
    if 'train.early_stop' in ' '.join(overrides):
        # nothing improves by 0.5: best at epoch 0, stopped after epoch 2, past the cut
        stop = json.loads((whole/'metrics.json').read_text())['early_stop']
        assert stop['stopped'] and stop['best_epoch'] == 0 and len(pd.read_csv(whole/'history.csv')) == 3, stop
    if method == 'scn':
        assert pd.read_csv(cut/'history.csv').relabelled.iloc[-1] > 0           # relabelling happened across the cut
        pd.testing.assert_frame_equal(pd.read_csv(whole/'scn_labels.csv'), pd.read_csv(cut/'scn_labels.csv'))

def test_kill_9_mid_epoch_then_resume_from_the_cli(tmp_path, settings_file):
    """A real `eac-fastai train` process killed with SIGKILL during an epoch; `--resume` ends where the uninterrupted
    run ends."""
    recipe, cli = _recipe(tmp_path, n=40), str(Path(sys.executable).parent/'eac-fastai')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    run = lambda *a: subprocess.run([cli, 'train', *a], capture_output=True, text=True, env=env, timeout=600)
    r = run(str(recipe), '--out', str(tmp_path/'whole'))
    assert r.returncode == 0, r.stderr[-3000:]
    p = subprocess.Popen([cli, 'train', str(recipe), '--out', str(tmp_path/'cut')], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + 300
        while not list((tmp_path/'cut').glob(f'*/models/{RESUME}')):
            assert p.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
            time.sleep(0.05)
        (cut,) = (tmp_path/'cut').iterdir()
        # the live run is locked: a second process resuming it is refused, naming the first, and changes nothing
        r = CliRunner().invoke(app, ['train', '--resume', str(cut)])
        assert p.poll() is None, "the run finished before it could be resumed beside itself"
        assert r.exit_code == 2 and f'in use by process {p.pid}' in r.output, r.output
        time.sleep(0.5)                                # into the next epoch
        assert p.poll() is None, "the run finished before it could be killed"
        os.kill(p.pid, signal.SIGKILL)
    finally: p.kill(); p.wait()
    done = load_torch_file(cut/'models'/RESUME)['epoch']
    assert done < 3 and not (cut/'metrics.json').exists()
    # no temporary file counts as a checkpoint
    assert not [f for f in (cut/'models').iterdir() if f.name.startswith('.')]
    assert f'process {p.pid} ' in (cut/'.lock').read_text()                # the killed process's lock: stale
    r = run('--resume', str(cut))
    assert r.returncode == 0, r.stderr[-3000:]
    assert f'after epoch {done}' in r.stdout
    (whole,) = (tmp_path/'whole').iterdir()
    _same_result(whole, cut)

def test_resume_refuses_what_it_cannot_continue(tmp_path, settings_file):
    """Exit code 2 and one message, nothing written: a finished run, a run without a checkpoint, a recipe as well, a
    checkpoint of another model or epoch count, a corrupt checkpoint."""
    cli = CliRunner()
    done = train_recipe(load_recipe(_recipe(tmp_path)), tmp_path/'runs')
    before = {f: f.stat().st_mtime_ns for f in done.rglob('*') if f.is_file()}
    for args, msg in [(['--resume', str(done)], 'finished already'),
                      (['--resume', str(tmp_path)], 'not a run directory'),
                      ([str(done/'recipe.yaml'), '--resume', str(done)], 'give no recipe'),
                      ([], 'give a recipe')]:
        r = cli.invoke(app, ['train', *args])
        assert r.exit_code == 2 and msg in r.output, r.output
    (done/'metrics.json').unlink()
    recipe, stat = (done/'recipe.yaml').read_text(), (done/'recipe.yaml').stat()
    # the recipe edited after the run started: refused, naming the changed keys
    (done/'recipe.yaml').write_text(recipe.replace('epochs: 4', 'epochs: 5').replace('lam: 5.0', 'lam: 1.0')
                                    .replace('bs: 16', 'bs: 8'))
    r = cli.invoke(app, ['train', '--resume', str(done)])
    assert r.exit_code == 2 and 'edited after the run started' in ' '.join(r.output.split()), r.output
    for change in ('data.bs: 16 → 8', 'eac.lam: 5.0 → 1.0', 'train.epochs: 4 → 5'): assert change in r.output
    (done/'recipe.yaml').write_text(recipe); os.utime(done/'recipe.yaml', ns=(stat.st_atime_ns, stat.st_mtime_ns))
    # a process training in the run holds its lock: refused, naming it
    with RunLock(done):
        r = cli.invoke(app, ['train', '--resume', str(done)])
        assert r.exit_code == 2 and f'in use by process {os.getpid()}' in r.output, r.output
    os.utime(done/'.lock', ns=(before[done/'.lock'], before[done/'.lock']))
    # a malformed history
    history = (done/'history.csv').read_bytes()
    for bad in (b'epoch,train_loss\n"1,2\n', b'step,loss\n0,1\n'):
        (done/'history.csv').write_bytes(bad)
        r = cli.invoke(app, ['train', '--resume', str(done)])
        assert r.exit_code == 2 and 'history.csv' in r.output and 'Traceback' not in r.output, r.output
        assert (done/'history.csv').read_bytes() == bad
    (done/'history.csv').write_bytes(history)
    os.utime(done/'history.csv', ns=(before[done/'history.csv'], before[done/'history.csv']))
    state = load_torch_file(done/'models'/RESUME)
    state['model']['0.0.weight'] = state['model']['0.0.weight'][:1]                     # weights of another model
    torch.save(state, done/'models'/RESUME)
    r = cli.invoke(app, ['train', '--resume', str(done)])
    assert (r.exit_code == 2 and "does not fit the run's model or optimizer" in r.output
            and 'restore it or start a new run' in r.output), r.output
    (done/'models'/RESUME).write_bytes(b'not a checkpoint')
    r = cli.invoke(app, ['train', '--resume', str(done)])
    assert r.exit_code == 2 and 'not a PyTorch checkpoint' in r.output, r.output
    (done/'models'/RESUME).unlink()
    r = cli.invoke(app, ['train', '--resume', str(done)])
    assert r.exit_code == 2 and 'before its first epoch ended' in r.output, r.output
    assert {f: f.stat().st_mtime_ns for f in done.rglob('*') if f.is_file()} == \
           {f: t for f, t in before.items() if f.exists()}

def test_checkpoints_are_fastai_files_and_resume_can_be_off(tmp_path, settings_file):
    "`last.pth` loads with `learn.load` (optimizer too); `train.resumable=false` writes no resume.pth."
    run = train_recipe(load_recipe(_recipe(tmp_path), ['train.resumable=false', 'train.epochs=1']), tmp_path/'runs')
    assert not (run/'models'/RESUME).exists()
    last = load_torch_file(run/'models'/'last.pth')
    assert set(last) == {'model', 'opt'}
    assert torch.equal(torch.load(run/'models'/'best.pth', weights_only=True)['0.0.weight'],
                       last['model']['0.0.weight'])
    learn = load_run(run)[1]
    learn.load('last', with_opt=True)                 # fastai's own loader, optimizer state included
    assert torch.equal(learn.model[0][0].weight.detach(), last['model']['0.0.weight'])
