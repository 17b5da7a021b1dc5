"The cheaper evaluation schedule: a fixed class-balanced subset in the earlier epochs, the whole split in the last."
import json
import numpy as np, pandas as pd, pytest
from fastai.learner import Learner
from eac_fastai.training.evaluation import balanced_subset
from eac_fastai.training.recipe import load_recipe
from eac_fastai.training.fit import resume_run, train_recipe
from test_resume import Crash, CrashAt, _recipe

def test_balanced_subset_is_fixed_and_balanced():
    labels = np.repeat(list('abcd'), [50, 50, 50, 3])
    rows = balanced_subset(labels, 40, seed=0)
    counts = pd.Series(labels[rows]).value_counts()
    assert len(rows) == 40 == len(set(rows)) and counts['d'] == 3                  # a short class gives all it has
    assert sorted(counts[['a', 'b', 'c']]) == [12, 12, 13]                           # the others share the rest evenly
    assert np.array_equal(rows, balanced_subset(labels, 40, seed=0)) and np.array_equal(rows, np.sort(rows))
    assert not np.array_equal(rows, balanced_subset(labels, 40, seed=1))
    assert np.array_equal(balanced_subset(labels, 500), np.arange(len(labels)))     # more than there are: all of them
    assert (pd.Series(labels[balanced_subset(labels, 8)]).value_counts() == 2).all()

def test_subset_epochs_then_whole_split_and_training_unchanged(tmp_path, settings_file):
    "Epochs 1-2 score the 7-image subset, the last 5 all 21 images; the training is the same as without the subset."
    f = _recipe(tmp_path, 'eac')
    whole = train_recipe(load_recipe(f, ['train.epochs=7']), tmp_path/'whole')
    sub = train_recipe(load_recipe(f, ['train.epochs=7', 'train.eval_subset.n=7']), tmp_path/'sub')
    hw, hs = pd.read_csv(whole/'history.csv'), pd.read_csv(sub/'history.csv')
    assert list(hs.eval_images) == [7, 7, 21, 21, 21, 21, 21] and 'eval_images' not in hw
    cols = ['train_loss', 'train_ce', 'train_consistency', 'flipped_as_given', 'flipped_as_clean']
    pd.testing.assert_frame_equal(hw[cols], hs[cols])                     # the same training, batch for batch
    pd.testing.assert_series_equal(hw.accuracy.iloc[2:], hs.accuracy.iloc[2:])       # the whole-split epochs agree
    mw, ms = (json.loads((run/'metrics.json').read_text()) for run in (whole, sub))
    assert ms['last5_mean_accuracy'] == mw['last5_mean_accuracy'] and ms['final_accuracy'] == mw['final_accuracy']
    assert len(pd.read_csv(sub/'preds_valid.csv')) == 21                              # predictions of the whole split

def test_resume_keeps_the_schedule(tmp_path, settings_file, monkeypatch):
    "A run cut in a subset epoch and resumed scores the same sets in the same epochs as an uninterrupted one."
    r = load_recipe(_recipe(tmp_path, 'baseline'), ['train.epochs=6', 'train.eval_subset.n=7'])
    whole = train_recipe(r, tmp_path/'whole')
    fit = Learner.fit
    crashing = lambda self, *a, cbs=None, **k: fit(self, *a, cbs=[*(cbs or []), CrashAt(1)], **k)
    monkeypatch.setattr(Learner, 'fit', crashing)
    with pytest.raises(Crash): train_recipe(r, tmp_path/'cut')
    monkeypatch.setattr(Learner, 'fit', fit)
    (cut,) = (tmp_path/'cut').iterdir()
    resume_run(cut)
    pd.testing.assert_frame_equal(*(pd.read_csv(run/'history.csv').drop(columns='time') for run in (whole, cut)))
    assert list(pd.read_csv(cut/'history.csv').eval_images) == [7] + [21]*5

def test_full_last_below_five_is_refused(tmp_path):
    from eac_fastai.training.recipe import RecipeError
    with pytest.raises(RecipeError, match=r'train\.eval_subset\.full_last'):
        load_recipe(_recipe(tmp_path, 'eac'), ['train.eval_subset.full_last=3'])
