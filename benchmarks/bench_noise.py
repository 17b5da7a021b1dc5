"""Robustness to label noise on real images: every method on Fashion-MNIST with synthetic noise (recipes/fmnist.yaml).

Makes the data once under settings.ini's data dir (Debian's `dataset-fashion-mnist`: a 5,000-image training subset,
500 per class, and the 10k test set as PNGs), and one noisy CSV per noise setting and seed: symmetric (`sym30`, or `30`)
or pair-flip (`pair30`: class j → j+1 in the recipe's data.classes order), with exact counts. A seed changes the noise
draw, the initialisation and the augmentation stream together (the recipe's `seed`). Each cell
`recipes/fmnist.yaml#<noise>-<method>` (and EAC at each `--lam`) trains with `eac-fastai train`, `--jobs` at a time on
`--device`, into a new folder under `--out`. The recipe scores a fixed class-balanced 2,000-image subset of the test set
in epochs 1-25 and the whole 10k test set in the last 5, so last-5 and final are whole-test figures. Writes
results.json (every run's own numbers, with its seeds, and its per-epoch curves) and results.md: per row, the mean ±
std over the seeds, with n; both are rewritten after every run, so a stopped benchmark keeps what finished.

    apt-get install -y dataset-fashion-mnist
    .venv/bin/python benchmarks/bench_noise.py --noise sym30 pair30 --seeds 0 1 2        # every method, three seeds
    .venv/bin/python benchmarks/bench_noise.py --noise 10 --methods --lam 1               # only EAC at λ 1 (sym10)
    .venv/bin/python benchmarks/bench_noise.py --device cuda --jobs 12 --noise sym10 sym20 sym30 pair30 --seeds 0 1 2 \
        --lam 1                                                               # the whole table on one GPU
    .venv/bin/python benchmarks/bench_noise.py --merge runs/bench-noise-*/results.json    # one table of earlier runs
"""
import argparse, json, os, re, subprocess, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
import numpy as np, pandas as pd

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO/'recipes'/'fmnist.yaml'
METHODS = ('baseline', 'baseline_flip', 'ac', 'scn', 'rul', 'eac', 'nla')  # the table's rows (the default)
# on request: EAC's consistency options at λ 5, and RUL with the relabelling its author advises
VARIANTS = ('eac_ramp', 'eac_rel', 'eac_ramp_rel', 'eac_norm', 'eac_ramp_norm', 'rul_relabel')
CELLS = METHODS + VARIANTS
COST = {'eac': 2, 'ac': 2, 'nla': 2}       # steps per image relative to the baseline's: the longest runs start first

def cost(cell:str) -> int: return COST.get(cell.split('_')[0], 1)
def recipe_lam(cell:str, overrides=()) -> float|None:
    "EAC's λ in recipe cell `cell` (e.g. `sym30-eac`) with `overrides`; None for the other methods."
    from eac_fastai.training.recipe import load_recipe
    r = load_recipe(f'{RECIPE}#{cell}', overrides)
    return r.eac.lam if r.method == 'eac' else None

def noise_setting(name:str) -> str:
    "`sym30`, `pair30`, or a bare rate (`30`: symmetric) as its canonical name; argparse's error otherwise."
    m = re.fullmatch(r'(sym|pair)?(\d+)', name)
    if not m or not 0 < int(m[2]) < 100: raise argparse.ArgumentTypeError(
        f"unknown noise {name!r}: give sym<rate> or pair<rate> with a rate in percent (1-99), e.g. sym30 pair30")
    kind, rate = m[1] or 'sym', int(m[2])
    if kind == 'pair' and rate >= 50: raise argparse.ArgumentTypeError(
        f"noise {name!r}: pair-flip at {rate}% makes the wrong label the majority of a class; give a rate below 50")
    return f'{kind}{rate}'

def counted(least:int):
    "An argparse type: an integer ≥ `least`."
    def parse(v):
        try: n = int(v)
        except ValueError: n = None
        if n is None or n < least: raise argparse.ArgumentTypeError(f"must be an integer ≥ {least}, got {v!r}")
        return n
    return parse

def noisy_csv(noise:str, seed:int) -> str:
    "The noisy CSV of `noise` and `seed`, relative to the data dir (seed 0: the recipe's own file)."
    return f"fmnist/fmnist_{noise}{'' if seed == 0 else f'_seed{seed}'}.csv"

def make_data(data:Path, noises, seeds, source:Path):
    "The Fashion-MNIST CSV (5,000 train, 10k test) and one noisy copy per noise setting and seed, each made once."
    from eac_fastai.data.convert import convert_fashion_mnist
    from eac_fastai.data.noise import add_label_noise, pairflip_noise_matrix, symmetric_noise_matrix
    from eac_fastai.training.recipe import load_recipe
    classes = load_recipe(f'{RECIPE}#sym30-baseline').data.classes   # pair-flip follows the recipe's class order
    clean = data/'fmnist'/'fmnist.csv'
    if not clean.is_file(): convert_fashion_mnist(source, clean, train_subset=5000, seed=0, num_workers=4)
    for noise in noises:
        kind, rate = re.fullmatch(r'(sym|pair)(\d+)', noise).groups()
        matrix = (symmetric_noise_matrix if kind == 'sym' else pairflip_noise_matrix)(len(classes), int(rate)/100)
        for seed in seeds:
            out = data/noisy_csv(noise, seed)
            if out.is_file(): continue
            df = pd.read_csv(clean, dtype=str, keep_default_na=False)
            add_label_noise(df, classes, matrix, seed=seed).to_csv(out, index=False)

def plan(noises, methods, lams, seeds, device:str, overrides) -> list[dict]:
    "The runs, longest first: each method at the recipe's settings and EAC at each extra λ, per noise setting and seed."
    jobs = []
    for noise in noises:
        for seed in seeds:
            common = [f'seed={seed}', f'data.csv={noisy_csv(noise, seed)}', f'train.device={device}', *overrides]
            cells = [(m, recipe_lam(f'{noise}-{m}', common), []) for m in methods]
            cells += [('eac', recipe_lam(f'{noise}-eac', [*common, f'eac.lam={l}']), [f'eac.lam={l}']) for l in lams]
            for m, lam, extra in cells:
                name = f"{noise}-{m}{f'-lam{lam:g}' if extra else ''}-s{seed}"
                jobs.append(dict(name=name, cell=f'{noise}-{m}', noise=noise, method=m, lam=lam, seed=seed,
                                 noise_seed=seed, overrides=[*common, *extra]))
    return sorted(jobs, key=lambda j: -cost(j['method']))

def train(job:dict, folder:Path, threads:int) -> dict:
    "Run one `eac-fastai train` in its own process (its output in `logs/`); the job with its run folder and wall time."
    out, log = folder/job['name'], folder/'logs'/f"{job['name']}.log"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [str(Path(sys.executable).parent/'eac-fastai'), 'train', f"{RECIPE}#{job['cell']}", *job['overrides'],
           '--out', str(out)]
    t0 = time.time()
    with open(log, 'w') as f: rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    runs = sorted(out.glob('*/metrics.json')) if out.is_dir() else []
    print(f"{'done' if rc == 0 and runs else 'FAILED'}: {job['name']} in {(time.time()-t0)/60:.1f} min ({log})",
          flush=True)
    return dict(job, run=str(runs[-1].parent) if rc == 0 and runs else None, minutes=(time.time()-t0)/60)

def summarize(done) -> tuple[pd.DataFrame, dict]:
    "One row per finished run (with its seeds), and the per-epoch curves by run name."
    rows, curves = [], {}
    for j in done:
        if j['run'] is None: continue
        run = Path(j['run'])
        m, h = json.loads((run/'metrics.json').read_text()), pd.read_csv(run/'history.csv')
        cols = [c for c in ('epoch', 'accuracy', 'eval_images', 'flipped_as_given', 'flipped_as_clean') if c in h]
        curves[j['name']] = h[cols].to_dict('list')
        rows.append(dict(noise=j['noise'], method=j['method'], lam=j['lam'], seed=j['seed'], noise_seed=j['noise_seed'],
                         last5=m['last5_mean_accuracy'], final=m['final_accuracy'], best=m['best_accuracy'],
                         flipped_as_given=h.flipped_as_given.iloc[-1], flipped_as_clean=h.flipped_as_clean.iloc[-1],
                         max_flipped_as_given=h.flipped_as_given.max(), train_noise=m['train_noise_rate'],
                         minutes=j['minutes'], name=j['name'], run=j['run']))
    return pd.DataFrame(rows), curves

def fail(message:str):
    "Exit with status 2 and `message` as one line on stderr."
    print(f"bench_noise.py: {message}", file=sys.stderr); sys.exit(2)

def read_results(path) -> dict:
    "One `results.json` written by this script; a clear exit (status 2) naming the file when it is not one."
    try: d = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e: fail(f"--merge: {path}: cannot read it as JSON ({e})")
    if not (isinstance(d, dict) and isinstance(d.get('runs'), list) and isinstance(d.get('curves'), dict)):
        fail(f"--merge: {path}: not a results.json of bench_noise.py (it has no 'runs' list and 'curves' mapping); "
             "give the files its runs wrote")
    return d

def _canonical(run:dict) -> dict:
    "A run of an earlier version of this script as this one writes it: noise `30` → `sym30`, seed 0, its job's name."
    if isinstance(run['noise'], str): return run
    return dict(run, noise=f"sym{run['noise']}", seed=0, noise_seed=0,
                name=_canonical_name(Path(run['run']).parent.name))

def _canonical_name(name:str) -> str:
    "An earlier job name (`noise30-eac-lam1`: no seed, symmetric only) as this script names it (`sym30-eac-lam1-s0`)."
    return re.sub(r'^noise(\d+)(.*)$', r'sym\1\2-s0', name)

def merge(files) -> tuple[pd.DataFrame, dict]:
    "The runs and curves of several `results.json` as one frame, ordered by noise kind and rate, method, λ and seed."
    parts = [read_results(f) for f in files]
    df = ordered(pd.DataFrame([dict(_canonical(r), file=str(f)) for f, p in zip(files, parts) for r in p['runs']]))
    key = df.assign(lam=df.lam.fillna(-1))[['noise', 'method', 'lam', 'seed']].astype(str).agg(' '.join, axis=1)
    if key.duplicated().any():
        r = df[key == key[key.duplicated()].iloc[0]]
        fail(f"--merge: {r.noise.iloc[0]} {r.method.iloc[0]} seed {r.seed.iloc[0]} is in {' and '.join(r.file)}: "
             "one seed would count twice; leave one of them out")
    curves = {_canonical_name(k): v for p in parts for k, v in p['curves'].items()}
    return df, {n: curves[n] for n in df.name if n in curves}

def ordered(df:pd.DataFrame) -> pd.DataFrame:
    "The runs ordered by noise kind (symmetric first) and rate, method, λ and seed."
    key = pd.DataFrame(dict(kind=df.noise.str[0] != 's', rate=df.noise.str.extract(r'(\d+)', expand=False).astype(int),
                            order=df.method.map(CELLS.index), lam=df.lam, seed=df.seed))
    return df.loc[key.sort_values(list(key), na_position='first').index].reset_index(drop=True)

FIGURES = ('last5', 'final', 'best', 'flipped_as_given', 'max_flipped_as_given', 'flipped_as_clean')

def rows(df:pd.DataFrame) -> pd.DataFrame:
    "One row per noise setting, method and λ: the mean and std (over the seeds) of every figure, and n."
    g = df.assign(lam=df.lam.fillna(-1)).groupby(['noise', 'method', 'lam'], sort=False)
    out = g[list(FIGURES)].agg(['mean', 'std'])
    out.columns = [f'{f}_{s}' for f, s in out.columns]
    out = out.assign(n=g.size())
    return out.reset_index().assign(lam=lambda d: d.lam.where(d.lam >= 0))

def markdown(df:pd.DataFrame, curves:dict, every:int=5, minutes:bool=True) -> str:
    "The table (mean ± std over seeds, n), each run's wall minutes, and the mean memorisation curves, as Markdown."
    pct = lambda m, s: f"{100*m:.1f}" + ('' if pd.isna(s) else f" ± {100*s:.1f}")
    head = ['noise', 'method', 'λ', 'n', 'last-5', 'final', 'best', 'flipped → given (final / max)',
            'flipped → clean (final)']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|'*len(head)]
    for r in rows(df).to_dict('records'):
        f = lambda k: pct(r[f'{k}_mean'], r[f'{k}_std'])
        lam = '' if pd.isna(r['lam']) else format(r['lam'], 'g')
        lines.append(f"| {r['noise']} | {r['method']} | {lam} | {r['n']} | {f('last5')} | {f('final')} | {f('best')} | "
                     f"{f('flipped_as_given')} / {f('max_flipped_as_given')} | {f('flipped_as_clean')} |")
    if minutes:
        lines += ['', '| run | seed | minutes |', '|---|---|---|']
        lines += [f"| {r.name} | {r.seed} | {r.minutes:.1f} |" for r in df.itertuples()]
    if curves:
        lines += ['', 'flipped → given, % (memorised noisy labels), by epoch, mean over the seeds:', '']
        by_row = {}
        for r in df.itertuples():
            if r.name in curves: by_row.setdefault(re.sub(r'-s\d+$', '', r.name), []).append(curves[r.name])
        epochs = next(iter(curves.values()))['epoch']
        shown = [e for e in epochs if (e+1) % every == 0 or e == 0]
        lines += ['| run | n | ' + ' | '.join(str(e+1) for e in shown) + ' |', '|' + '---|'*(len(shown)+2)]
        for name, cs in by_row.items():
            vals = [np.mean([c['flipped_as_given'][c['epoch'].index(e)] for c in cs]) for e in shown]
            lines.append(f"| {name} | {len(cs)} | " + ' | '.join(f"{100*v:.1f}" for v in vals) + ' |')
    return '\n'.join(lines)

def write_results(folder:Path, done, planned:int, a, threads:int, t0:float):
    "results.json and results.md of the runs `done` so far (of `planned`), replaced atomically."
    df, curves = summarize(done)
    if not len(df): return
    df, total = ordered(df), (time.time()-t0)/60
    data = dict(runs=df.to_dict('records'), curves=curves, jobs=a.jobs, threads=threads, device=a.device,
                cpus=os.cpu_count(), argv=sys.argv[1:], started=f"{datetime.fromtimestamp(t0):%Y-%m-%d %H:%M}",
                total_minutes=total, planned=planned)
    for name, text in (('results.json', json.dumps(data, indent=2)),
                       ('results.md', markdown(df, curves) + f"\n\n{len(df)}/{planned} runs in {total:.1f} min\n")):
        tmp = folder/f'.{name}.tmp'
        tmp.write_text(text); os.replace(tmp, folder/name)

class _Parser(argparse.ArgumentParser):
    def error(self, message): fail(f"{message} (--help lists the arguments)")    # one line, status 2

def parse_args(argv=None):
    p = _Parser(description=__doc__.split('\n')[0])
    p.add_argument('--noise', type=noise_setting, nargs='+', default=['sym30'],
                   help='noise settings: sym<rate>, pair<rate>, or a rate (symmetric)')
    p.add_argument('--seeds', type=counted(0), nargs='+', default=[0],
                   help='seeds: each its own noise draw, init and augmentation')
    p.add_argument('--methods', nargs='*', default=list(METHODS), choices=CELLS,
                   help="methods at the recipe's settings (none: only the --lam runs); also the variants "
                   f"{', '.join(VARIANTS)}")
    p.add_argument('--lam', type=float, nargs='*', default=[], help="extra EAC runs at these λ (the recipe's is 5)")
    p.add_argument('--jobs', type=counted(1), default=2,
                   help='runs trained at the same time (on a GPU: all on the one GPU)')
    p.add_argument('--threads', type=counted(1), default=None, help='CPU threads per run (default: CPU cores ÷ jobs)')
    p.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto', help="every run's train.device")
    p.add_argument('--out', type=Path, default=None, help="parent folder (default: settings.ini's runs)")
    p.add_argument('--source', type=Path, default=Path('/usr/share/datasets/fashion-mnist'),
                   help='the Fashion-MNIST IDX files')
    p.add_argument('--merge', type=Path, nargs='+', help='train nothing: print one table of these results.json files')
    p.add_argument('overrides', nargs='*', help='recipe overrides for every run, e.g. train.epochs=10')
    return p.parse_args(argv)

def main():
    a = parse_args()
    if a.merge: return print(markdown(*merge(a.merge), minutes=False))    # measured apart: their minutes do not compare
    import torch
    if a.device == 'cuda' and not torch.cuda.is_available(): fail("--device cuda: no CUDA device here; use cpu")
    from eac_fastai.training.runs import new_run_dir
    from eac_fastai.settings import load_settings
    from eac_fastai.training.recipe import RecipeError
    settings = load_settings()
    try: jobs = plan(a.noise, a.methods, a.lam, a.seeds, a.device, a.overrides)     # bad overrides: before any file
    except RecipeError as e: fail(' '.join(line.strip() for line in str(e).splitlines()))
    make_data(settings.data, a.noise, a.seeds, a.source)
    folder = new_run_dir(a.out or settings.runs, 'bench-noise')         # two started in the same second: -2
    (folder/'logs').mkdir()
    threads = a.threads or max(1, (os.cpu_count() or 2)//a.jobs)
    print(f"{len(jobs)} runs, {a.jobs} at a time, {threads} thread(s) each, device {a.device} → {folder}", flush=True)
    t0, done, lock = time.time(), [], threading.Lock()
    def run(job):
        finished = train(job, folder, threads)
        with lock:                                     # after every run: a stopped benchmark keeps what finished
            done.append(finished)
            write_results(folder, done, len(jobs), a, threads, t0)
    with ThreadPoolExecutor(a.jobs) as ex: list(ex.map(run, jobs))
    df, curves = summarize(done)
    if not len(df): sys.exit(f"bench_noise.py: no run finished; their logs are in {folder/'logs'}")
    print(markdown(ordered(df), curves))
    print(f"\n{len(df)}/{len(jobs)} runs in {(time.time()-t0)/60:.1f} min on {os.cpu_count()} cores "
          f"({a.jobs} jobs × {threads} threads, {a.device})")
    if len(df) < len(jobs): sys.exit(1)

if __name__ == '__main__': main()
