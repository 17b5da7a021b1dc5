"Label-issue detection: cleanlab's self-confidence and confident-learning rule on hand-made probabilities."
import numpy as np, pandas as pd, pytest
from eac_fastai.analysis.label_issues import (find_label_issues, issue_detection_scores, label_issues_frame,
                                              label_quality)

PROBS = np.array([[.9, .1, 0.], [.8, .2, 0.], [.3, .7, 0.],     # labelled 0: the third is confidently class 1
                  [.1, .8, .1], [.2, .7, .1], [.45, .55, 0.],   # labelled 1
                  [0., .2, .8], [.5, .1, .4]])                  # labelled 2: the last is argmax 0 but not confidently 0
LABELS = np.array([0, 0, 0, 1, 1, 1, 2, 2])

def test_label_quality_is_the_given_labels_probability():
    assert np.allclose(label_quality(LABELS, PROBS), [.9, .8, .3, .8, .7, .55, .8, .4])

def test_confident_learning_rule():
    # thresholds: class 0 = mean(.9,.8,.3) = .667, class 1 = mean(.8,.7,.55) = .683, class 2 = mean(.8,.4) = .6
    assert find_label_issues(LABELS, PROBS).tolist() == [False, False, True, False, False, False, False, False]
    assert (find_label_issues(LABELS, PROBS, by='argmax').tolist() ==
            [False, False, True, False, False, False, False, True])
    with pytest.raises(ValueError, match='unknown rule'): find_label_issues(LABELS, PROBS, by='x')

def test_frame_ranking_and_scores():
    items = pd.DataFrame(dict(image=[f'{i}.png' for i in range(8)]))
    clean = np.array([0, 0, 1, 1, 1, 0, 2, -1])                  # images 2 and 5 were flipped; image 7's truth unknown
    f = label_issues_frame(items, LABELS, PROBS, ['a', 'b', 'c'], clean)
    assert list(f.columns) == ['image', 'is_label_issue', 'label_quality', 'given_label', 'predicted_label',
                               'clean_label', 'is_noisy']
    assert (f.image.iloc[0] == '2.png' and f.is_label_issue.iloc[0] and f.given_label.iloc[0] == 'a' and
            f.predicted_label.iloc[0] == 'b')
    # issues first, then least confident first
    assert f.label_quality.iloc[1:].is_monotonic_increasing
    assert f.set_index('image').sort_index().is_noisy.isna().tolist() == [False]*7 + [True]
    s = issue_detection_scores(f)
    assert s == dict(flagged=1, noisy=2, true_positives=1, precision=1.0, recall=0.5)
    assert issue_detection_scores(label_issues_frame(items, LABELS, PROBS, ['a', 'b', 'c'])) is None
