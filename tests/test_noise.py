"Noise generation: matrix convention, exact and seeded counts, the DataFrame API and `eac-fastai make-noise`."
import numpy as np, pandas as pd, pytest
from typer.testing import CliRunner
from eac_fastai.cli import app
from eac_fastai.errors import UserError
from eac_fastai.data.noise import (add_label_noise, check_noise_matrix, generate_noisy_labels, noise_matrix_from_csv,
                              pairflip_noise_matrix, symmetric_noise_matrix)

def test_matrices_columns_sum_to_one():
    for m in (symmetric_noise_matrix(7, 0.3), pairflip_noise_matrix(7, 0.3)):
        assert np.allclose(m.sum(0), 1) and np.allclose(np.diag(m), 0.7)
    s = symmetric_noise_matrix(4, 0.3)
    assert np.allclose(s[~np.eye(4, dtype=bool)], 0.1)
    p = pairflip_noise_matrix(4, 0.2)
    assert p[1, 0] == pytest.approx(0.2) and p[0, 3] == pytest.approx(0.2) and p[2, 0] == 0   # true j -> given j+1

@pytest.mark.parametrize('rate', [0.1, 0.2, 0.3])
def test_symmetric_noise_exact_and_seeded(rate):
    y = np.repeat(np.arange(7), [1290, 281, 717, 4772, 1982, 705, 2524])       # RAF-DB's train class counts
    noisy = generate_noisy_labels(y, symmetric_noise_matrix(7, rate), seed=3)
    for j, n in enumerate(np.bincount(y)):
        assert (noisy[y == j] != j).sum() == int(rate*n + 0.5 + 1e-9)            # exact per class, halves up
    flips = noisy != y
    counts = np.array([[((y == j) & (noisy == i)).sum() for j in range(7)] for i in range(7)])
    off = counts[~np.eye(7, dtype=bool)].reshape(7, 6)
    assert (np.abs(counts - symmetric_noise_matrix(7, rate)*np.bincount(y)) <= 1).all()   # even spread to the others
    assert np.array_equal(noisy, generate_noisy_labels(y, symmetric_noise_matrix(7, rate), seed=3))
    assert not np.array_equal(noisy, generate_noisy_labels(y, symmetric_noise_matrix(7, rate), seed=4))
    assert flips.mean() == pytest.approx(rate, abs=1e-3) and off.min() > 0

def test_pairflip_and_sampled_mode():
    y = np.repeat(np.arange(5), 1000)
    noisy = generate_noisy_labels(y, pairflip_noise_matrix(5, 0.25), seed=0)
    assert ((noisy != y) == (noisy == (y+1) % 5)).all() and (noisy != y).mean() == 0.25
    sampled = generate_noisy_labels(y, symmetric_noise_matrix(5, 0.25), seed=0, exact=False)
    assert abs((sampled != y).mean() - 0.25) < 0.03 and (sampled != y).mean() != 0.25

def test_invalid_matrices_rejected(tmp_path):
    with pytest.raises(ValueError, match='columns must sum to 1'): check_noise_matrix([[0.9, 0.5], [0.2, 0.5]])
    with pytest.raises(ValueError, match='square'): check_noise_matrix(np.ones((2, 3))/2)
    with pytest.raises(ValueError, match='rate'): symmetric_noise_matrix(3, 1.5)
    f = tmp_path/'m.csv'; f.write_text('0.8,0.1,0.1\n0.1,0.8,0.1\n0.1,0.1,0.8\n')
    assert np.allclose(noise_matrix_from_csv(f, 3), np.loadtxt(f, delimiter=','))
    with pytest.raises(UserError, match='3x3 but there are 4 classes'): noise_matrix_from_csv(f, 4)

def test_add_label_noise_keeps_clean_and_other_splits():
    df = pd.DataFrame(dict(image=[f'{i}.png' for i in range(300)], label=np.repeat(['a', 'b', 'c'], 100),
                           split=['train']*200 + ['test']*100))
    out = add_label_noise(df, ['a', 'b', 'c'], symmetric_noise_matrix(3, 0.2), seed=0)
    assert (out.clean_label == df.label).all()
    assert (out.label[out.split == 'test'] == df.label[df.split == 'test']).all()
    assert (out.label[out.split == 'train'] != df.label[df.split == 'train']).sum() == 40

def test_make_noise_cli(tmp_path):
    src = tmp_path/'clean.csv'
    pd.DataFrame(dict(image=[f'{i}.png' for i in range(70)], label=np.repeat(list('abcdefg'), 10),
                      split='train')).to_csv(src, index=False)
    out, runner = tmp_path/'noisy.csv', CliRunner()
    r = runner.invoke(app, ['make-noise', str(src), '-o', str(out), '--rate', '0.3', '--seed', '1'])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out)
    assert (df.label != df.clean_label).sum() == 21
    before = out.read_text()
    r = runner.invoke(app, ['make-noise', str(src), '-o', str(out), '--rate', '0.1'])
    assert r.exit_code == 2 and 'already exists' in r.output and out.read_text() == before
    r = runner.invoke(app, ['make-noise', str(src), '-o', str(tmp_path/'x.csv'), '--kind', 'matrix'])
    assert r.exit_code == 2 and '--matrix' in r.output and not (tmp_path/'x.csv').exists()
    m = tmp_path/'m.csv'
    m.write_text('\n'.join(','.join('1' if i == (j+1) % 7 else '0' for j in range(7)) for i in range(7)))
    r = runner.invoke(app, ['make-noise', str(src), '-o', str(tmp_path/'p.csv'), '--kind', 'matrix', '--matrix', str(m),
                            '--classes', 'a,b,c,d,e,f,g'])
    assert r.exit_code == 0, r.output
    p = pd.read_csv(tmp_path/'p.csv')
    assert (p.label.map('abcdefg'.index) == (p.clean_label.map('abcdefg'.index)+1) % 7).all()

def test_make_noise_edge_cases(tmp_path):
    runner = CliRunner()
    src = tmp_path/'c.csv'
    pd.DataFrame(dict(image=[f'{i}.png' for i in range(6)], label=list('abcabc'), split=['train']*4 + ['test']*2,
                      clean_label=['a', '', 'c', 'a', '', ''])).to_csv(src, index=False)
    # columns sum to 0.99999: accepted, renormalised
    m = tmp_path/'m.csv'; m.write_text('0.33333,0.33333,0.33333\n' * 3)
    r = runner.invoke(app, ['make-noise', str(src), '-o', str(tmp_path/'n.csv'), '--kind', 'matrix', '--matrix', str(m),
                            '--no-exact', '--classes', 'a,b,c'])
    assert r.exit_code == 0, r.output
    out = pd.read_csv(tmp_path/'n.csv', keep_default_na=False)
    # empty clean_label: the given label is the truth
    assert list(out.clean_label) == ['a', 'b', 'c', 'a', 'b', 'c']
    one = tmp_path/'one.csv'
    pd.DataFrame(dict(image=['a.png'], label=['x'], split=['train'])).to_csv(one, index=False)
    r = runner.invoke(app, ['make-noise', str(one), '-o', str(tmp_path/'o.csv')])
    assert (r.exit_code == 2 and 'one.csv' in r.output and 'at least 2 classes' in r.output
            and 'Traceback' not in r.output)

def test_pairflip_follows_a_class_order_the_user_gave(tmp_path):
    "Pair-flip (and a matrix) depend on the class order: without --classes or --recipe, exit 2 naming the sorted order."
    src, runner = tmp_path/'clean.csv', CliRunner()
    pd.DataFrame(dict(image=[f'{i}.png' for i in range(40)], label=np.repeat(['sad', 'happy', 'angry', 'neutral'], 10),
                      split='train')).to_csv(src, index=False)
    r = runner.invoke(app, ['make-noise', str(src), '-o', str(tmp_path/'p.csv'), '--kind', 'pairflip', '--rate', '0.3'])
    assert r.exit_code == 2 and "--classes 'angry,happy,neutral,sad'" in r.output and not (tmp_path/'p.csv').exists()
    recipe = tmp_path/'r.yaml'
    recipe.write_text("data: {csv: clean.csv, classes: [sad, happy, angry, neutral]}\n"
                      "matrix: {method: {eac: {method: eac}, baseline: {method: baseline}}}\n")
    r = runner.invoke(app, ['make-noise', str(src), '-o', str(tmp_path/'p.csv'), '--kind', 'pairflip', '--rate', '0.3',
                            '--recipe', str(recipe)])
    assert r.exit_code == 0, r.output
    assert 'sad → happy → angry → neutral → sad' in r.output
    p = pd.read_csv(tmp_path/'p.csv')
    flipped = p[p.label != p.clean_label]
    pairs = flipped.clean_label + '>' + flipped.label
    assert len(flipped) == 12 and pairs.isin(['sad>happy', 'happy>angry', 'angry>neutral', 'neutral>sad']).all()
    r = runner.invoke(app, ['make-noise', str(src), '-o', str(tmp_path/'q.csv'), '--kind', 'pairflip',
                            '--classes', 'sad,happy', '--recipe', str(recipe)])
    assert r.exit_code == 2 and 'not both' in r.output
    recipe.write_text("data: {csv: clean.csv}\n")
    r = runner.invoke(app, ['make-noise', str(src), '-o', str(tmp_path/'q.csv'), '--kind', 'pairflip',
                            '--recipe', str(recipe)])
    assert r.exit_code == 2 and 'sets no data.classes' in r.output
