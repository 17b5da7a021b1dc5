"""The benchmark scripts' cheap paths: `bench_noise.py`'s seeds, noise settings and run plan, its argument errors, and
`--merge`, which joins stored results (seeds into one row) and refuses a file that is not one."""
import importlib.util, json, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from test_faces import bench_faces

ROOT = Path(__file__).parent.parent
RESULTS = ROOT/'benchmarks'/'results'

def merge(*files):
    return subprocess.run([sys.executable, str(ROOT/'benchmarks'/'bench_noise.py'), '--merge', *map(str, files)],
                          capture_output=True, text=True, cwd=ROOT)

def test_merge_orders_the_rows_by_noise_then_method():
    r = merge(RESULTS/'fmnist_noise20.json', RESULTS/'fmnist_noise10.json')
    assert r.returncode == 0, r.stderr
    # the results table
    rows = [[c.strip() for c in l.split('|')[1:3]] for l in r.stdout.split('\n\n')[0].splitlines()[2:]]
    noise = [n for n, _ in rows]
    assert noise == sorted(noise, key=lambda n: int(n[3:])) and set(noise) == {'sym10', 'sym20'}
    assert [m for n, m in rows if n == "sym10"][:2] == ["baseline", "ac"]

def test_merge_refuses_a_file_that_is_not_a_results_json(tmp_path):
    bad = tmp_path/'notes.json'; bad.write_text(json.dumps({'runs': 'none'}))
    r = merge(RESULTS/'fmnist_noise10.json', bad)
    assert r.returncode == 2 and str(bad) in r.stderr and 'Traceback' not in r.stderr and r.stdout == ''
    r = merge(tmp_path/'missing.json')
    assert r.returncode == 2 and 'missing.json' in r.stderr

spec = importlib.util.spec_from_file_location('bench_noise', ROOT/'benchmarks'/'bench_noise.py')
bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)

def _clean_fmnist(data:Path):
    "A stand-in for the converted Fashion-MNIST CSV: 30 training rows per class (no images needed to draw noise)."
    from eac_fastai.training.recipe import load_recipe
    classes = load_recipe(f"{ROOT/'recipes'/'fmnist.yaml'}#sym30-baseline").data.classes
    (data/'fmnist').mkdir(parents=True)
    rows = pd.DataFrame(dict(image=[f'{i}.png' for i in range(300)], label=np.repeat(classes, 30), split='train'))
    rows.to_csv(data/'fmnist'/'fmnist.csv', index=False)
    return classes

def test_seeds_change_the_noise_draw_and_the_same_seed_repeats_it(tmp_path):
    classes = _clean_fmnist(tmp_path/'a'); _clean_fmnist(tmp_path/'b')
    for d in ('a', 'b'): bench.make_data(tmp_path/d, ['sym30', 'pair30'], [0, 1], source=None)
    read = lambda d, noise, seed: (tmp_path/d/bench.noisy_csv(noise, seed)).read_text()
    for noise in ('sym30', 'pair30'):
        assert read('a', noise, 0) == read('b', noise, 0) and read('a', noise, 1) == read('b', noise, 1)
        assert read('a', noise, 0) != read('a', noise, 1)
    pair = pd.read_csv(tmp_path/'a'/bench.noisy_csv('pair30', 1))
    flipped = pair[pair.label != pair.clean_label]
    index = lambda labels: labels.map(classes.index)
    assert len(flipped) == 90 and (index(flipped.label) == (index(flipped.clean_label)+1) % 10).all()
    assert set(flipped.label[flipped.clean_label == 'Ankle boot']) == {'T-shirt'}            # the chain wraps round

def test_seeds_change_the_initialisation(tmp_path, settings_file):
    "Each job's recipe seed is its own: two seeds give two initial networks, the same seed the same one."
    from fastai.torch_core import set_seed
    from eac_fastai.training.recipe import load_recipe
    from eac_fastai.training.build import recipe_dataloaders, recipe_learner
    jobs = {j['seed']: j for j in bench.plan(['pair30'], ['baseline'], [], [0, 3], 'cpu', [])}
    assert [o for o in jobs[3]['overrides'] if o.startswith(('seed=', 'data.csv='))] == \
        ['seed=3', 'data.csv=fmnist/fmnist_pair30_seed3.csv']
    demo = ['data.demo={n_train: 2, n_valid: 1, n_test: 1, size: 16}', '~data.csv', '~data.classes', 'data.img_size=16',
            'train.device=cpu']
    def weights(seed):
        seeded = [o for o in jobs[seed]['overrides'] if o.startswith('seed=')]
        r = load_recipe(f"{ROOT/'recipes'/'fmnist.yaml'}#pair30-baseline", seeded + demo)
        set_seed(r.seed, reproducible=True)
        return recipe_learner(r, recipe_dataloaders(r)).model[0][0].weight.detach().clone()
    assert torch.equal(weights(0), weights(0)) and not torch.equal(weights(0), weights(3))

def test_plan_names_every_run_and_starts_the_longest_first():
    jobs = bench.plan(['sym30', 'pair30'], list(bench.METHODS), [1], [0, 1, 2], 'cuda', ['train.epochs=3'])
    assert len(jobs) == 2*3*(len(bench.METHODS)+1) == len({j['name'] for j in jobs})
    long = 2*3*(len(bench.COST) + 1)                                   # EAC at λ 1 too
    assert {j['method'] for j in jobs[:long]} == set(bench.COST) and {j['method'] for j in jobs[long:]}.isdisjoint(
        bench.COST)
    lam1 = next(j for j in jobs if j['name'] == 'pair30-eac-lam1-s2')
    assert lam1['cell'] == 'pair30-eac' and lam1['lam'] == 1 and lam1['overrides'][-1] == 'eac.lam=1'
    assert {'train.device=cuda', 'train.epochs=3', 'seed=2'} <= set(lam1['overrides'])
    assert bench.noise_setting('30') == 'sym30' and bench.noise_setting('pair30') == 'pair30'

def test_the_variants_are_recipe_cells_with_their_option():
    """Each --methods variant is a cell of recipes/fmnist.yaml: EAC at λ 5 with its option (among the longest runs), or
    RUL with relabelling."""
    from eac_fastai.training.recipe import load_recipe
    eacs = [v for v in bench.VARIANTS if v.startswith('eac_')]
    jobs = bench.plan(['sym30'], ['baseline', *bench.VARIANTS], [], [0], 'cpu', [])
    assert [j['method'] for j in jobs[:len(eacs)]] == eacs and all(j['lam'] == 5 for j in jobs[:len(eacs)])
    rul = load_recipe(f"{ROOT/'recipes'/'fmnist.yaml'}#sym30-rul_relabel")
    assert rul.method == 'rul' and rul.rul.relabel and rul.rul.relabel_epoch == 10
    options = {v: load_recipe(f"{ROOT/'recipes'/'fmnist.yaml'}#sym30-{v}").eac for v in eacs}
    assert {v: (e.lam, e.ramp, e.consistency) for v, e in options.items()} == {
        'eac_ramp': (5, 5, 'mse'), 'eac_rel': (5, 0, 'relative'), 'eac_ramp_rel': (5, 5, 'relative'),
        'eac_norm': (5, 0, 'normalized'), 'eac_ramp_norm': (5, 5, 'normalized')}

@pytest.mark.parametrize('args,words', [(['--seeds', '0', '-1'], '--seeds'),
                                        (['--noise', 'sym30', 'gauss30'], "unknown noise 'gauss30'"),
                                        (['--jobs', '0'], '--jobs'), (['--noise', 'pair70'], 'below 50'),
                                        (['--threads', 'x'], '--threads')])
def test_bad_arguments_exit_2_with_one_line(args, words):
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'bench_noise.py'), *args], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1 and r.stdout == ''

@pytest.mark.parametrize('args,words', [(['train.epochs=0'], 'sym30-baseline: 1 problem(s): train.epochs'),
                                        (['--methods', '--lam', '-1'], 'sym30-eac: 1 problem(s): eac.lam')])
def test_a_bad_recipe_override_exits_2_before_writing(tmp_path, args, words):
    "Every run's recipe is validated first: exit 2 naming the cell and key, no run folder made."
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'bench_noise.py'), *args, '--out', str(tmp_path/'runs'),
                        '--source', str(tmp_path/'no_idx')], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and words in r.stderr.strip().splitlines()[-1] and not (tmp_path/'runs').exists()

def _results(path:Path, runs):
    curves = {r['name']: dict(epoch=[0, 1], flipped_as_given=[0.1, r['flipped_as_given']]) for r in runs}
    path.write_text(json.dumps(dict(runs=runs, curves=curves)))
    return path

def test_merge_joins_seeds_into_one_row_with_mean_std_and_n(tmp_path):
    run = lambda noise, m, seed, acc: dict(
        noise=noise, method=m, lam=5.0 if m == 'eac' else None, seed=seed, noise_seed=seed, last5=acc, final=acc,
        best=acc, flipped_as_given=0.5, max_flipped_as_given=0.5, flipped_as_clean=0.2, name=f'{noise}-{m}-s{seed}',
        run=f'x/{noise}-{m}-s{seed}/run')
    a = _results(tmp_path/'a.json', [run('pair30', 'eac', 0, 0.80), run('sym30', 'baseline', 0, 0.70)])
    b = _results(tmp_path/'b.json', [run('pair30', 'eac', 1, 0.84), run('sym30', 'baseline_flip', 1, 0.72),
                                     run('pair30', 'eac', 2, 0.82)])
    r = merge(a, b)
    assert r.returncode == 0, r.stderr
    table = [[c.strip() for c in l.split('|')[1:6]] for l in r.stdout.split('\n\n')[0].splitlines()[2:]]
    assert table == [['sym30', 'baseline', '', '1', '70.0'], ['sym30', 'baseline_flip', '', '1', '72.0'],
                     ['pair30', 'eac', '5', '3', '82.0 ± 2.0']]                        # sample std over the 3 seeds
    assert '| pair30-eac | 3 | 10.0 |' in r.stdout                                    # the curve: mean over the seeds

def test_merge_reads_the_earlier_one_seed_results():
    "Results of the script before seeds and noise kinds (noise 10, no seed) join as sym10, seed 0, n 1."
    r = merge(RESULTS/'fmnist_noise10.json')
    assert r.returncode == 0, r.stderr
    assert '| sym10 | baseline |  | 1 | 82.9 |' in r.stdout

def test_merge_refuses_the_same_seed_twice(tmp_path):
    a = json.loads((RESULTS/'fmnist_noise10.json').read_text())
    (tmp_path/'again.json').write_text(json.dumps(dict(a, runs=a['runs'][:1])))
    r = merge(RESULTS/'fmnist_noise10.json', tmp_path/'again.json')
    assert r.returncode == 2 and 'seed 0' in r.stderr and 'again.json' in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1

def test_readmes_fashion_mnist_table_is_the_merge_of_the_stored_results():
    r = merge(*sorted(RESULTS.glob('fmnist_*.json')))
    assert r.returncode == 0, r.stderr
    table = r.stdout.split('\n\nflipped')[0].strip()
    assert table in (ROOT/'README.md').read_text() and r.stdout in (RESULTS/'fmnist.md').read_text(), \
        "README's table or fmnist.md is stale: regenerate them from " \
        "`bench_noise.py --merge benchmarks/results/fmnist_*.json`"

def test_results_are_rewritten_after_every_run(tmp_path):
    "A benchmark stopped part-way keeps the runs that finished: results.json after each, readable by --merge."
    def finished(name, acc):
        run = tmp_path/name/'run'; run.mkdir(parents=True)
        (run/'metrics.json').write_text(json.dumps(dict(last5_mean_accuracy=acc, final_accuracy=acc, best_accuracy=acc,
                                                        train_noise_rate=0.3)))
        pd.DataFrame(dict(epoch=[0, 1], accuracy=[0.5, acc], eval_images=[20, 100], flipped_as_given=[0.1, 0.2],
                          flipped_as_clean=[0.5, 0.6])).to_csv(run/'history.csv', index=False)
        return dict(name=name, noise='sym30', method='eac', lam=5.0, seed=int(name[-1]), noise_seed=int(name[-1]),
                    run=str(run), minutes=1.0)
    a = bench.parse_args(['--seeds', '0', '1'])
    done = [finished('sym30-eac-s0', 0.8)]
    bench.write_results(tmp_path, done, 2, a, 1, 0.)
    first = json.loads((tmp_path/'results.json').read_text())
    assert [r['name'] for r in first['runs']] == ['sym30-eac-s0'] and first['planned'] == 2
    assert '1/2 runs' in (tmp_path/'results.md').read_text()
    done.append(finished('sym30-eac-s1', 0.9))
    bench.write_results(tmp_path, done, 2, a, 1, 0.)
    r = merge(tmp_path/'results.json')
    assert r.returncode == 0 and '| sym30 | eac | 5 | 2 | 85.0 ± 7.1 |' in r.stdout
    assert not list(tmp_path.glob('.*.tmp'))


def test_bench_faces_images_hold_their_true_faces_and_scoring_counts_each_face_once():
    sets = bench_faces.image_sets()
    assert {k: len(v) for k, v in sets.items()} == dict(photos=3, moved=12, lfw=100, none=107)
    for name, img, truth in [x for v in sets.values() for x in v]:
        for x1, y1, x2, y2 in truth: assert 0 <= x1 < x2 <= img.width and 0 <= y1 < y2 <= img.height, name
    truth = [[0, 0, 10, 10], [20, 20, 30, 30]]
    assert bench_faces.score([[1, 1, 11, 11], [0, 0, 9, 9], [21, 21, 30, 30]], truth) == (2, 1)   # a duplicate: false
    assert bench_faces.score([[5, 5, 25, 25]], truth) == (0, 1) and bench_faces.score([], truth) == (0, 0)

def test_readmes_detector_table_is_the_stored_one():
    stored = json.loads((RESULTS/'faces.json').read_text())['results']
    table = bench_faces.markdown(stored)
    assert table in (RESULTS/'faces.md').read_text() and table in (ROOT/'README.md').read_text()
