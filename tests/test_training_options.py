"""The fastai training kit as recipe keys: gradient accumulation, early stopping on the validation split, compile."""
import json, shutil
import pandas as pd, pytest, torch
from fastai.callback.core import Callback
from fastai.torch_core import set_seed
from torch import nn
from typer.testing import CliRunner
from eac_fastai.cli import app
from eac_fastai.data.core import label_dataloaders
from eac_fastai.models.learner import eac_learner
from eac_fastai.training.accumulation import EpochGradientAccumulation

class Steps(Callback):
    "Counts the optimizer steps taken."
    def before_fit(self): self.n = 0
    def after_step(self): self.n += 1

def _without_batchnorm(module:nn.Module):
    "Every BatchNorm of `module` replaced by an identity: a network whose update does not depend on the batch split."
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm): setattr(module, name, nn.Identity())
        else: _without_batchnorm(child)

def _trained(csv, bs, n, method='baseline', epochs=1):
    "The weights after `epochs` of `method` at batch `bs`, `n` micro-batches a step, augmentation off; and the steps."
    set_seed(0, reproducible=True)
    dls = label_dataloaders(csv, img_size=32, bs=bs, device='cpu')
    # SGD: an update linear in the gradient
    learn = eac_learner(dls, 'resnet10_tiny', method=method, erase=None, basic=None, opt='sgd')
    _without_batchnorm(learn.model)
    steps = Steps()
    learn.fit(epochs, 1e-2, cbs=[steps, *([EpochGradientAccumulation(n, bs, learn.cbs[-1].labels_per_image)]
                                          if n > 1 else [])])
    return torch.cat([p.detach().flatten() for p in learn.model.parameters()]), steps.n

def test_accumulated_micro_batches_make_the_update_of_one_big_batch(demo_csv):
    "56 training images: 4 micro-batches of 14 accumulated = one batch of 56 (one step); unaccumulated they differ."
    assert len(pd.read_csv(demo_csv).query("split == 'train'")) == 56
    big, big_steps = _trained(demo_csv, 56, 1)
    acc, acc_steps = _trained(demo_csv, 14, 4)
    small, small_steps = _trained(demo_csv, 14, 1)
    assert (big_steps, acc_steps, small_steps) == (1, 1, 4)
    assert torch.allclose(acc, big, rtol=1e-4, atol=1e-6), (acc - big).abs().max()
    assert not torch.allclose(small, big, rtol=1e-4, atol=1e-6)

@pytest.mark.parametrize('method', ['baseline', 'eac', 'ac'])
def test_an_epoch_ends_its_last_step(demo_csv, method):
    "4 batches of 16 a epoch, 3 a step: a full step then a step of the last one, each epoch (AC's doubled labels too)."
    assert _trained(demo_csv, 16, 3, method, epochs=2)[1] == 4

def _recipe(tmp_path, demo_csv, extra=''):
    f = tmp_path/'r.yaml'
    f.write_text(f"method: baseline\ndata: {{csv: {demo_csv}, img_size: 32, bs: 16}}\nmodel: {{arch: resnet10_tiny}}\n"
                 f"train: {{epochs: 8, lr: 1.0e-9, device: cpu{extra}}}\n")
    return f

def test_accumulation_and_early_stopping_from_the_cli(tmp_path, demo_csv, settings_file):
    """The header states the effective batch; with nothing improving by min_delta the run stops after `patience`; cut
    after stopping, before finishing, `--resume` finishes it as it was."""
    r = CliRunner().invoke(app, ['train', str(_recipe(tmp_path, demo_csv, ', accumulate: 4, early_stop: '
                                                      '{monitor: mean_class_accuracy, patience: 2, min_delta: 0.5}')),
                                 '--out', str(tmp_path/'runs')])
    assert r.exit_code == 0, r.output
    assert 'batch 16 × 4 accumulated = 64' in r.output and 'early stopping' in r.output
    (run,) = (tmp_path/'runs').iterdir()
    metrics, history = json.loads((run/'metrics.json').read_text()), pd.read_csv(run/'history.csv')
    assert metrics['early_stop'] == dict(monitor='mean_class_accuracy', patience=2, min_delta=0.5, stopped=True,
                                         best=history.mean_class_accuracy[0], best_epoch=0)
    assert list(history.epoch) == [0, 1, 2] and (run/'models'/'best.pth').is_file()
    # stopped, then killed before it finished: --resume finishes it without training another epoch
    cut = tmp_path/'cut'; shutil.copytree(run, cut)
    for f in ('metrics.json', 'export.pkl', 'preds_valid.csv'): (cut/f).unlink()
    r = CliRunner().invoke(app, ['train', '--resume', str(cut)])
    assert r.exit_code == 0, r.output
    assert json.loads((cut/'metrics.json').read_text()) == metrics
    pd.testing.assert_frame_equal(pd.read_csv(cut/'history.csv'), history)

def test_early_stopping_on_the_test_split_is_refused(tmp_path, demo_csv, settings_file):
    r = CliRunner().invoke(app, ['validate', str(_recipe(tmp_path, demo_csv, ', early_stop: {}')),
                                 'data.valid_split=test'])
    assert r.exit_code == 2 and 'train.early_stop: data.valid_split is test' in ' '.join(r.output.split())
    assert 'inflates' in r.output

@pytest.mark.parametrize('backend,method', [('aot_eager', 'eac'), ('aot_eager', 'nla'),   # NLA: the whole model twice
                                            pytest.param('true', 'eac', marks=pytest.mark.slow)])
def test_compile_from_the_cli(tmp_path, demo_csv, settings_file, backend, method):
    """train.compile: the run trains and finishes; its checkpoints keep the uncompiled names and its export predicts.
    aot_eager traces without generating code (the default run); true = inductor, which compiles C++ here (slow)."""
    from fastai.learner import load_learner
    from eac_fastai.models.weights import read_state_dict
    r = CliRunner().invoke(app, ['train', str(_recipe(tmp_path, demo_csv, f', compile: {backend}')), f'method={method}',
                                 'train.epochs=1', 'train.lr=1.0e-3', '--out', str(tmp_path/'runs')])
    assert r.exit_code == 0, r.output
    (run,) = (tmp_path/'runs').iterdir()
    assert list(read_state_dict(run/'models'/'best.pth'))[0] == '0.0.weight'
    image = pd.read_csv(demo_csv).query("split == 'test'").image.iloc[0]
    assert load_learner(run/'export.pkl').predict(demo_csv.parent/image)[0] in pd.read_csv(demo_csv).label.unique()

def wandb_records(path) -> list:
    """The records of a W&B run file (`run-<id>.wandb`, a LevelDB-style log of protobuf `Record`s in 32 KiB blocks
    after a 7-byte header), read without the W&B service."""
    from pathlib import Path
    from wandb.proto import wandb_internal_pb2 as pb
    data, block, pos, buf, out = Path(path).read_bytes(), 32768, 7, b'', []
    assert data[:4] == b':W&B'
    while pos + 7 <= len(data):
        if block - pos % block < 7: pos += block - pos % block; continue        # a block's zero-padded tail
        n, kind = int.from_bytes(data[pos+4:pos+6], 'little'), data[pos+6]
        chunk, pos = data[pos+7:pos+7+n], pos + 7 + n
        buf = chunk if kind in (1, 2) else buf + chunk                           # full, first | middle, last
        if kind in (1, 4): out.append(pb.Record.FromString(buf))
    return out

def test_loggers_read_back(tmp_path, demo_csv, settings_file, monkeypatch):
    """train.loggers [csv, tensorboard, wandb]: TensorBoard's event file and W&B's offline run hold every epoch's
    history.csv columns (accuracy, the EAC terms, memorisation) and the recipe."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    for v in ('WANDB_DIR', 'WANDB_CACHE_DIR', 'WANDB_CONFIG_DIR', 'WANDB_DATA_DIR'):
        monkeypatch.setenv(v, str(tmp_path/'wandb-home'))
    monkeypatch.setenv('WANDB_MODE', 'offline'); monkeypatch.setenv('WANDB_SILENT', 'true')
    r = CliRunner().invoke(app, ['train', str(_recipe(tmp_path, demo_csv, ', loggers: [csv, tensorboard, wandb]')),
                                 'method=eac', 'train.epochs=2', 'train.lr=1.0e-3', '--out', str(tmp_path/'runs')])
    assert r.exit_code == 0, r.output
    (run,) = (tmp_path/'runs').iterdir()
    history = pd.read_csv(run/'history.csv')
    tb = EventAccumulator(str(run/'tensorboard')); tb.Reload()
    for col in ('accuracy', 'mean_class_accuracy', 'train_consistency', 'flipped_as_given', 'valid_loss'):
        assert [e.value for e in tb.Scalars(col)] == pytest.approx(list(history[col])), col
    assert 'eac' in tb.Tensors('recipe/text_summary')[0].tensor_proto.string_val[0].decode()
    (file,) = run.glob('wandb/offline-run-*/run-*.wandb')
    records = wandb_records(file)
    config = {u.key or '/'.join(u.nested_key): json.loads(u.value_json)
              for r in records if r.HasField('run') for u in r.run.config.update}
    assert config['method'] == 'eac' and config['train']['loggers'] == ['csv', 'tensorboard', 'wandb']
    epochs = [items for r in records if r.HasField('history')
              if 'accuracy' in (items := {i.key or '/'.join(i.nested_key): json.loads(i.value_json)
                                          for i in r.history.item})]
    for col in ('accuracy', 'train_consistency', 'flipped_as_given'):
        assert [e[col] for e in epochs] == pytest.approx(list(history[col])), col
