"""Mean class accuracy beside accuracy: its formula, every epoch in history.csv, each class's in metrics.json, `table
--metric`, and a history written before it existed gaining the column when its run is resumed."""
import json
import pandas as pd, pytest, torch
from fastai.learner import Learner
from fastai.metrics import accuracy
from typer.testing import CliRunner
from eac_fastai.cli import app
from eac_fastai.data.demo import DemoSpec, make_demo_dataset
from eac_fastai.metrics import mean_class_accuracy, per_class_accuracy
from eac_fastai.training.fit import resume_run, train_recipe
from eac_fastai.training.recipe import load_recipe
from test_resume import Crash, CrashAt, _recipe

def test_mean_class_accuracy_is_the_mean_of_the_per_class_accuracies():
    targ = torch.tensor([0]*8 + [1]*2 + [2]*2)
    inp = torch.nn.functional.one_hot(torch.tensor([0]*8 + [0, 0] + [2, 0]), 3).float()     # class 1 never right
    assert accuracy(inp, targ).item() == pytest.approx(9/12)
    assert mean_class_accuracy(inp, targ).item() == pytest.approx((1 + 0 + 0.5)/3)
    assert per_class_accuracy(['a']*3 + ['b'], ['a', 'a', 'b', 'b'], ['a', 'b', 'c']) == dict(a=2/3, b=1., c=None)

def test_a_run_records_mean_class_accuracy_and_table_lays_it_out(tmp_path, settings_file):
    "On an imbalanced evaluation split (8 Happiness faces, 1 of each other class), where the two metrics differ."
    csv = make_demo_dataset(tmp_path/'demo', DemoSpec(n_train=6, n_valid=8, n_test=2, size=32))
    df = pd.read_csv(csv)
    valid = df[df.split == 'valid']
    keep = valid[(valid.label == 'Happiness') | ~valid.duplicated('label')].index
    df[(df.split != 'valid') | df.index.isin(keep)].to_csv(csv, index=False)
    (tmp_path/'r.yaml').write_text(f"method: eac\nseed: 0\ndata: {{csv: {csv}, img_size: 32, bs: 16}}\n"
                                   "model: {arch: resnet10_narrow}\ntrain: {epochs: 3, lr: 2.0e-3, device: cpu}\n")
    r = CliRunner().invoke(app, ['train', str(tmp_path/'r.yaml'), '--out', str(tmp_path/'runs')])
    assert r.exit_code == 0 and 'mean class last-5' in r.output, r.output
    (run,) = (tmp_path/'runs').iterdir()
    h, m = pd.read_csv(run/'history.csv'), json.loads((run/'metrics.json').read_text())
    assert h.mean_class_accuracy.notna().all() and len(h) == 3
    preds = pd.read_csv(run/'preds_valid.csv')
    assert len(preds) == 14 and m['per_class_accuracy'] == per_class_accuracy(preds.label, preds.pred, m['classes'])
    per_class = [v for v in m['per_class_accuracy'].values() if v is not None]
    assert m['final_mean_class_accuracy'] == pytest.approx(sum(per_class)/len(per_class), abs=1e-6)
    assert m['final_accuracy'] == pytest.approx((preds.label == preds.pred).mean(), abs=1e-6)
    assert m['last5_mean_mean_class_accuracy'] == pytest.approx(h.mean_class_accuracy.mean(), abs=1e-6)
    r = CliRunner().invoke(app, ['table', str(run), '--metric', 'mean_class_accuracy', '--csv', str(tmp_path/'t.csv')])
    assert r.exit_code == 0 and 'mean class accuracy' in r.output, r.output
    t = pd.read_csv(tmp_path/'t.csv')
    assert t.last5.iloc[0] == pytest.approx(100*m['last5_mean_mean_class_accuracy']) and t.paper.isna().all()

def test_resuming_a_history_from_before_the_column_fills_it_in(tmp_path, settings_file, monkeypatch):
    r = load_recipe(_recipe(tmp_path))
    fit = Learner.fit
    monkeypatch.setattr(Learner, 'fit', lambda self, *a, cbs=None, **k: fit(self, *a, cbs=[*(cbs or []), CrashAt(2)],
                                                                             **k))
    with pytest.raises(Crash): train_recipe(r, tmp_path/'cut')
    monkeypatch.setattr(Learner, 'fit', fit)
    (cut,) = (tmp_path/'cut').iterdir()
    h = pd.read_csv(cut/'history.csv')
    h.drop(columns='mean_class_accuracy').to_csv(cut/'history.csv', index=False)     # as an earlier version wrote it
    resume_run(cut)
    after = pd.read_csv(cut/'history.csv')
    assert list(after.columns) == list(h.columns) and after.epoch.tolist() == [0, 1, 2, 3]
    assert after.mean_class_accuracy.isna().tolist() == [True, True, False, False]
    pd.testing.assert_series_equal(after.accuracy.iloc[:2], h.accuracy.iloc[:2])
