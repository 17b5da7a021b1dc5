"""Robustness to label noise on real images: every method on Fashion-MNIST with symmetric noise (recipes/fmnist.yaml).

Makes the data once under settings.ini's data dir (Debian's `dataset-fashion-mnist`: a 5,000-image training subset,
500 per class, and the 10k test set as PNGs; symmetric noise with exact counts, seed 0), then trains each cell
`recipes/fmnist.yaml#noise<N>-<method>` (and EAC at each `--lam`) with `eac-fastai train`, `--jobs` at a time, each
job on its own threads, into a new folder under `--out`. Prints and writes (results.json, results.md) per run: test
accuracy (last-5 mean, final, best) and memorisation: among the training images whose label was flipped, the share
predicted as the given (noisy) label and as the clean label, per epoch.

    apt-get install -y dataset-fashion-mnist
    .venv/bin/python benchmarks/bench_noise.py --noise 30                 # the five methods at 30% noise
    .venv/bin/python benchmarks/bench_noise.py --noise 10 20 30 --lam 1 2 10
    .venv/bin/python benchmarks/bench_noise.py --noise 10 --methods --lam 1    # only EAC at λ 1
    .venv/bin/python benchmarks/bench_noise.py --merge runs/bench-noise-*/results.json   # one table of earlier runs
"""
import argparse, json, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
METHODS = ('baseline', 'ac', 'scn', 'rul', 'eac')

def make_data(data:Path, rates, source:Path):
    "The Fashion-MNIST CSV (5,000 train, 10k test) and one noisy copy per rate, made once."
    from eac_fastai.convert import FASHION_MNIST_CLASSES, convert_fashion_mnist
    from eac_fastai.noise import add_label_noise, symmetric_noise_matrix
    clean = data/'fmnist'/'fmnist.csv'
    if not clean.is_file(): convert_fashion_mnist(source, clean, train_subset=5000, seed=0, num_workers=4)
    for r in rates:
        out = clean.parent/f'fmnist_noise{r}.csv'
        if out.is_file(): continue
        df = pd.read_csv(clean, dtype=str, keep_default_na=False)
        noisy = add_label_noise(df, FASHION_MNIST_CLASSES, symmetric_noise_matrix(len(FASHION_MNIST_CLASSES), r/100), seed=0)
        noisy.to_csv(out, index=False)

def train(job:dict, folder:Path, threads:int) -> dict:
    "Run one `eac-fastai train` in its own process (its output in `logs/`); the job with its run folder and wall time."
    out, log = folder/job['name'], folder/'logs'/f"{job['name']}.log"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [str(Path(sys.executable).parent/'eac-fastai'), 'train', str(REPO/'recipes'/'fmnist.yaml') + '#' + job['cell'], *job['overrides'], '--out', str(out)]
    t0 = time.time()
    with open(log, 'w') as f: rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    runs = sorted(out.glob('*/metrics.json')) if out.is_dir() else []
    print(f"{'done' if rc == 0 and runs else 'FAILED'}: {job['name']} in {(time.time()-t0)/60:.1f} min ({log})", flush=True)
    return dict(job, run=str(runs[-1].parent) if rc == 0 and runs else None, minutes=(time.time()-t0)/60)

def summarize(done) -> tuple[pd.DataFrame, dict]:
    "One row per finished run, and the per-epoch memorisation curves by run name."
    rows, curves = [], {}
    for j in done:
        if j['run'] is None: continue
        run = Path(j['run'])
        m, h = json.loads((run/'metrics.json').read_text()), pd.read_csv(run/'history.csv')
        curves[j['name']] = h[['epoch', 'accuracy', 'flipped_as_given', 'flipped_as_clean']].to_dict('list')
        rows.append(dict(noise=j['noise'], method=j['method'], lam=j['lam'], last5=m['last5_mean_accuracy'], final=m['final_accuracy'],
                         best=m['best_accuracy'], flipped_as_given=h.flipped_as_given.iloc[-1], flipped_as_clean=h.flipped_as_clean.iloc[-1],
                         max_flipped_as_given=h.flipped_as_given.max(), train_noise=m['train_noise_rate'], minutes=j['minutes'], run=j['run']))
    return pd.DataFrame(rows), curves

def read_results(path) -> dict:
    "One `results.json` written by this script; a clear exit (status 2) naming the file when it is not one."
    def fail(why): print(f"--merge: {path}: {why}", file=sys.stderr); sys.exit(2)
    try: d = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e: fail(f"cannot read it as JSON ({e})")
    if not (isinstance(d, dict) and isinstance(d.get('runs'), list) and isinstance(d.get('curves'), dict)):
        fail("not a results.json of bench_noise.py (it has no 'runs' list and 'curves' mapping); give the files its runs wrote")
    return d

def merge(files) -> tuple[pd.DataFrame, dict]:
    "The runs and curves of several `results.json` as one table, ordered by noise rate, method and λ."
    parts = [read_results(f) for f in files]
    df = pd.DataFrame([r for p in parts for r in p['runs']])
    df = df.assign(order=df.method.map(METHODS.index)).sort_values(['noise', 'order', 'lam'], na_position='first').drop(columns='order')
    curves = {k: v for p in parts for k, v in p['curves'].items()}
    names = [Path(r).parent.name for r in df.run]                 # the job's folder: noise<N>-<method>[-lam<λ>]
    return df, {n: curves[n] for n in names if n in curves}

def markdown(df:pd.DataFrame, curves:dict, every:int=5, minutes:bool=True) -> str:
    "The results table (with each run's wall minutes) and the memorisation curves as Markdown tables."
    pct = lambda v: f"{100*v:.1f}"
    head = ['noise %', 'method', 'λ', 'last-5', 'final', 'best', 'flipped → given (final / max)', 'flipped → clean (final)'] + ['min']*minutes
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|'*len(head)]
    for r in df.itertuples():
        lines.append(f"| {r.noise} | {r.method} | {'' if pd.isna(r.lam) else f'{r.lam:g}'} | {pct(r.last5)} | {pct(r.final)} | {pct(r.best)} | "
                     f"{pct(r.flipped_as_given)} / {pct(r.max_flipped_as_given)} | {pct(r.flipped_as_clean)} |" + f" {r.minutes:.1f} |"*minutes)
    if curves:
        epochs = next(iter(curves.values()))['epoch']
        shown = [e for e in epochs if (e+1) % every == 0 or e == 0]
        lines += ['', 'flipped → given, % (memorised noisy labels), by epoch:', '',
                  '| run | ' + ' | '.join(str(e+1) for e in shown) + ' |', '|' + '---|'*(len(shown)+1)]
        for name, c in curves.items():
            lines.append(f"| {name} | " + ' | '.join(pct(c['flipped_as_given'][c['epoch'].index(e)]) for e in shown if e in c['epoch']) + ' |')
    return '\n'.join(lines)

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--noise', type=int, nargs='+', default=[30], choices=[10, 20, 30], help='noise rates in percent')
    p.add_argument('--methods', nargs='*', default=list(METHODS), choices=METHODS, help='methods at the recipe\'s settings (none: only the --lam runs)')
    p.add_argument('--lam', type=float, nargs='*', default=[], help="extra EAC runs at these λ (the recipe's is 5)")
    p.add_argument('--jobs', type=int, default=2, help='runs trained at the same time')
    p.add_argument('--threads', type=int, default=None, help='threads per run (default: CPU cores ÷ jobs)')
    p.add_argument('--out', type=Path, default=None, help="parent folder (default: settings.ini's runs)")
    p.add_argument('--source', type=Path, default=Path('/usr/share/datasets/fashion-mnist'), help='the Fashion-MNIST IDX files')
    p.add_argument('--merge', type=Path, nargs='+', help='train nothing: print one table of these results.json files')
    p.add_argument('overrides', nargs='*', help='recipe overrides for every run, e.g. train.epochs=10')
    a = p.parse_args()
    if a.merge: return print(markdown(*merge(a.merge), minutes=False))    # runs measured apart: their minutes are not comparable
    from eac_fastai.settings import load_settings
    settings = load_settings()
    make_data(settings.data, a.noise, a.source)
    jobs = [dict(name=f'noise{n}-{m}', cell=f'noise{n}-{m}', noise=n, method=m, lam=None, overrides=a.overrides) for n in a.noise for m in a.methods]
    jobs += [dict(name=f'noise{n}-eac-lam{l:g}', cell=f'noise{n}-eac', noise=n, method='eac', lam=l, overrides=[*a.overrides, f'eac.lam={l}'])
             for n in a.noise for l in a.lam]
    for j in jobs:
        if j['method'] == 'eac' and j['lam'] is None: j['lam'] = 5.0
    folder = (a.out or settings.runs)/f"bench-noise-{datetime.now():%Y%m%d-%H%M%S}"
    (folder/'logs').mkdir(parents=True)
    threads = a.threads or max(1, (os.cpu_count() or 2)//a.jobs)
    print(f"{len(jobs)} runs, {a.jobs} at a time, {threads} thread(s) each → {folder}", flush=True)
    t0 = time.time()
    with ThreadPoolExecutor(a.jobs) as ex: done = list(ex.map(lambda j: train(j, folder, threads), jobs))
    df, curves = summarize(done)
    md = markdown(df, curves)
    print(md)
    print(f"\n{len(df)}/{len(jobs)} runs in {(time.time()-t0)/60:.1f} min on {os.cpu_count()} cores ({a.jobs} jobs × {threads} threads)")
    (folder/'results.json').write_text(json.dumps(dict(runs=df.to_dict('records'), curves=curves, jobs=a.jobs, threads=threads,
                                                       total_minutes=(time.time()-t0)/60), indent=2))
    (folder/'results.md').write_text(md + '\n')

if __name__ == '__main__': main()
