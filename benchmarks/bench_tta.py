"""What flip test-time augmentation changes: each finished run's accuracy on its evaluation split with and without
averaging the probabilities of each image and its mirror (`eac-fastai evaluate RUN --tta flip`).

Takes the results files of `bench_noise.py` (or run folders): every run still on disk is scored from its last
checkpoint, both ways, in one process; runs whose folders are gone are listed as skipped. Writes a JSON file (every run)
and a Markdown table (mean ± std per noise and method, with n) beside it.

    .venv/bin/python benchmarks/bench_tta.py benchmarks/results/fmnist_*.json --root ../bench -o tta_fmnist.json
"""
import argparse, json, sys, time
from pathlib import Path
import pandas as pd, torch, yaml

def runs_of(sources, root:Path) -> list[dict]:
    "The runs named by results files (their `run` paths, relative to `root`) or given as folders."
    out = []
    for s in map(Path, sources):
        if s.is_dir():
            r = yaml.safe_load((s/'recipe.yaml').read_text())
            out.append(dict(noise=r['tags'].get('noise', ''), method=r['tags'].get('method', r['method']),
                            lam=r['eac']['lam'] if r['method'] == 'eac' else None, seed=r['seed'], run=str(s)))
            continue
        for r in json.loads(s.read_text())['runs']:
            out.append(dict(noise=r['noise'], method=r['method'], lam=r.get('lam'), seed=r.get('seed'),
                            run=str(Path(r['run']) if Path(r['run']).is_absolute() else root/r['run'])))
    return out

def score(run:str) -> dict:
    "Accuracy of the run's last model on its evaluation split, without and with flip TTA, and the seconds it took."
    from eac_fastai.analysis.outputs import outputs
    from eac_fastai.training.runs import load_run
    t = time.time()
    _, learn = load_run(run, 'last')
    plain, mirror, target = [], [], []
    for xb, yb in learn.dls.valid:                     # each batch once, as `outputs(tta='flip')` computes it
        plain.append(outputs(learn.model, [(xb,)])[0]); mirror.append(outputs(learn.model, [(xb.flip(-1),)])[0])
        target.append(yb.cpu())
    plain, mirror, target = (torch.cat(v).numpy() for v in (plain, mirror, target))
    flip = (plain + mirror)/2
    final = json.loads((Path(run)/'metrics.json').read_text())['final_accuracy']    # what training measured: the same
    return dict(accuracy=float((plain.argmax(1) == target).mean()), tta_flip=float((flip.argmax(1) == target).mean()),
                final_accuracy=final, n=len(target), seconds=round(time.time() - t, 1))

def table(rows:pd.DataFrame) -> str:
    "Mean ± std per noise and method (with λ) of the accuracy without and with TTA, and of the change, in points."
    rows = rows.assign(delta=rows.tta_flip - rows.accuracy,
                       lam=rows.lam.map(lambda v: '' if v is None or v != v else f'{v:g}'))
    fmt = lambda v: f"{100*v.mean():.2f}" + (f" ± {100*v.std():.2f}" if len(v) > 1 else '')
    lines = ['| noise | method | λ | n | accuracy | with flip TTA | change (points) |',
             '|---|---|---|---|---|---|---|']
    for (noise, method, lam), g in rows.groupby(['noise', 'method', 'lam'], sort=False):
        lines.append(f"| {noise} | {method} | {lam} | {len(g)} | {fmt(g.accuracy)} | {fmt(g.tta_flip)} | "
                     f"{'+' if g.delta.mean() >= 0 else ''}{fmt(g.delta)} |")
    return '\n'.join(lines)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('sources', nargs='+', help="results.json files of bench_noise.py, or run folders")
    p.add_argument('--root', type=Path, default=Path('.'), help="folder the results' run paths are relative to")
    p.add_argument('-o', '--output', type=Path, required=True, help="JSON file to write (and .md beside it)")
    a = p.parse_args(argv)
    rows, skipped = [], []
    for r in runs_of(a.sources, a.root):
        if not (Path(r['run'])/'models'/'last.pth').is_file(): skipped.append(r['run']); continue
        rows.append({**r, **score(r['run'])})
        print(f"{Path(r['run']).name}: {rows[-1]['accuracy']:.4f} → {rows[-1]['tta_flip']:.4f}", flush=True)
        a.output.write_text(json.dumps(dict(runs=rows, skipped=skipped), indent=2))
    a.output.write_text(json.dumps(dict(runs=rows, skipped=skipped), indent=2))
    a.output.with_suffix('.md').write_text(table(pd.DataFrame(rows)) + '\n')
    print(table(pd.DataFrame(rows)))

if __name__ == '__main__': sys.exit(main())
