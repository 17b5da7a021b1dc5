"""Finished runs laid out like the supplementary's Table 1, with the paper's numbers beside ours.

A run is a folder with `metrics.json` and `recipe.yaml`. Its table cell: the recipe's method; `pretrained` when
`model.weights` is a file, `imagenet` for torchvision's weights (no paper number), else `scratch`; the measured
training-label noise to the nearest 5% (or the `noise` tag); the `dataset` tag (a matrix cell's) or the data CSV's
folder. Runs of one cell whose recipes differ in more than their `seed` (a sweep's values, command-line overrides)
are kept apart as `variant`s named by the differing keys, each beside the paper's number for the cell; runs that
differ only in their seed are averaged."""
import json
from pathlib import Path
import pandas as pd, yaml
from ..errors import UserError
from ..methods import METHODS

__all__ = ['PAPER_TABLE1', 'PAPER_AC_RAFDB_30', 'PAPER_PROTOCOL', 'PROTOCOLS', 'METHOD_ORDER', 'DATASET_ORDER',
           'METRICS', 'collect_runs', 'results_table']

_T1 = """baseline 1 10 81.01 83.29 57.24
scn 1 10 82.15 84.99 58.60
rul 1 10 86.17 86.93 60.54
eac 1 10 88.02 87.03 61.11
baseline 1 20 77.98 82.34 55.89
scn 1 20 79.79 83.35 57.51
rul 1 20 84.32 85.05 59.01
eac 1 20 86.05 86.07 60.29
baseline 1 30 75.50 79.77 52.16
scn 1 30 77.45 82.20 54.60
rul 1 30 82.06 83.90 56.93
eac 1 30 84.42 85.44 58.91
baseline 0 10 62.55 77.87 44.73
scn 0 10 70.25 78.83 46.29
rul 0 10 70.75 80.62 48.53
eac 0 10 73.36 82.59 51.43
baseline 0 20 56.77 71.98 41.37
scn 0 20 65.95 74.16 42.46
rul 0 20 68.84 78.96 46.04
eac 0 20 71.21 80.55 48.97
baseline 0 30 49.70 69.34 38.47
scn 0 30 62.43 72.71 40.89
rul 0 30 66.92 76.92 44.77
eac 0 30 68.20 78.07 47.60"""
PAPER_TABLE1 = {(m, 'pretrained' if p == '1' else 'scratch', int(n), d): float(v)
                for m, p, n, *vs in (l.split() for l in _T1.splitlines())
                for d, v in zip(('rafdb', 'ferplus', 'affectnet'), vs)}
"""The supplementary's Table 1, test accuracy (%), keyed by (method, init, noise %, dataset). NLA (AAAI'25) published
no number in this setting that could be read here (its README's tables are images; README "Protocols")."""
PAPER_AC_RAFDB_30 = 78.29
"Attention Consistency on RAF-DB with 30% noise, pretrained ResNet-18 (supplementary §6)."

def _paper(method, init, noise, dataset):
    if (method, init, noise, dataset) == ('ac', 'pretrained', 30, 'rafdb'): return PAPER_AC_RAFDB_30
    return PAPER_TABLE1.get((method, init, noise, dataset))

PROTOCOLS = {'last5': "mean of the last 5 epochs", 'final': "the last epoch",
             'best': "the best epoch on the evaluation split (optimistic when that split is the test set)"}
"How a run's per-epoch scores become one number: the `table` columns."
PAPER_PROTOCOL = 'last5'
"The protocol of the supplementary's numbers: EAC's (its author, EAC issue #2)."

METHOD_ORDER, DATASET_ORDER = tuple(METHODS), ('rafdb', 'ferplus', 'affectnet')

METRICS = ('accuracy', 'mean_class_accuracy')            # what `table` can lay out (`--metric`)

def _read_run(d:Path, metric:str='accuracy') -> dict:
    "The table cell and `metric` (%: last-5, final, best) of the finished run in `d`."
    try: m, r = json.loads((d/'metrics.json').read_text()), yaml.safe_load((d/'recipe.yaml').read_text())
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise UserError(f"{d}: not a finished run: cannot read its metrics.json and recipe.yaml "
                        f"({type(e).__name__}: {e})") from None
    need = (f'last5_mean_{metric}', f'final_{metric}', f'best_{metric}')
    if not (isinstance(m, dict) and isinstance(r, dict) and all(isinstance(m.get(k), (int, float)) for k in need)):
        old = metric != 'accuracy' and isinstance(m, dict) and 'final_accuracy' in m
        raise UserError(f"{d}: metrics.json needs {', '.join(need)} and recipe.yaml a recipe; "
                        + ("the run was trained before eac-fastai recorded it: use --metric accuracy" if old
                           else "is it an eac-fastai run folder?"))
    tags, data, model = r.get('tags') or {}, r.get('data') or {}, r.get('model') or {}
    if m.get('train_noise_rate') is not None: noise = 5*round(20*m['train_noise_rate'])  # measured, to the nearest 5%
    else: noise = int(''.join(c for c in str(tags['noise']) if c.isdigit()) or 0) if 'noise' in tags else None
    dataset = tags.get('dataset') or (Path(data['csv']).parent.name or Path(data['csv']).stem
                                      if data.get('csv') else 'demo')
    recipe = {k: v for k, v in _flat(r).items() if k != 'seed' and not k.startswith('tags.')}
    return dict(run=str(d), dataset=dataset, method=r.get('method', 'eac'), noise=noise,
                init=_init(model.get('weights')), recipe=recipe,
                **{k.split('_')[0]: 100*m[k] for k in need}, epochs=m.get('epochs'), metric=metric)

def _init(weights) -> str:
    "A run's start as the table groups it: scratch, imagenet (torchvision's; not the paper's) or pretrained (a file)."
    from ..models.weights import is_torchvision_weights
    return 'scratch' if not weights else 'imagenet' if is_torchvision_weights(weights) else 'pretrained'

def _flat(d:dict, prefix='') -> dict:
    "A nested dict as `{dotted key: value}`."
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v: out.update(_flat(v, f'{prefix}{k}.'))
        else: out[f'{prefix}{k}'] = v
    return out

def _variants(recipes:list[dict]) -> list[str]:
    "For the recipes of one table cell: each one's values of the keys on which they differ ('' when all agree)."
    keys = sorted({k for r in recipes for k in r if len({repr(x.get(k)) for x in recipes}) > 1})
    return [' '.join(f'{k}={r.get(k)}' for k in keys) for r in recipes]

def collect_runs(paths, metric:str='accuracy') -> pd.DataFrame:
    "One row per finished run found in `paths` (run folders, or folders searched for them), with its `metric`."
    dirs = []
    for p in map(Path, paths):
        if not p.exists(): raise UserError(f"{p}: no such run folder")
        dirs += [p] if (p/'metrics.json').is_file() else sorted(f.parent for f in p.rglob('metrics.json'))
    if not dirs: raise UserError(f"no finished run (a folder with metrics.json) in {', '.join(map(str, paths))}")
    if metric not in METRICS: raise UserError(f"metric {metric!r}: choose one of {', '.join(METRICS)}")
    runs = pd.DataFrame([_read_run(d, metric) for d in dirs])
    runs['variant'] = ''
    for _, g in runs.groupby(['init', 'noise', 'method', 'dataset'], dropna=False):
        runs.loc[g.index, 'variant'] = _variants(list(g.recipe))
    return runs.drop(columns='recipe')

def results_table(runs:pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy (or the runs' other `metric`, %) under each of `PROTOCOLS` per (init, noise, method, variant,
    dataset) cell with the number of runs, the paper's number (accuracy only: Table 1 reports no other) and ours under
    the paper's protocol minus it (`diff`), in the paper's order: pretrained first, noise up, baseline … NLA, RAF-DB,
    FERPlus, AffectNet."""
    g = runs.groupby(['init', 'noise', 'method', 'variant', 'dataset'], dropna=False)
    out = g.agg(**{p: (p, 'mean') for p in PROTOCOLS}, runs=('run', 'size')).reset_index()
    accuracy = 'metric' not in runs or (runs.metric == 'accuracy').all()
    out['paper'] = [_paper(m, i, n, d) if accuracy else None
                    for m, i, n, d in zip(out.method, out.init, out.noise, out.dataset)]
    out['diff'] = out[PAPER_PROTOCOL] - out.paper.astype(float)
    rank = lambda order: lambda s: s.map(lambda v: (order.index(v), '') if v in order else (len(order), str(v)))
    keys = dict(init=rank(('pretrained', 'imagenet', 'scratch')), method=rank(METHOD_ORDER),
                dataset=rank(DATASET_ORDER))
    return out.sort_values(['init', 'noise', 'method', 'variant', 'dataset'],
                           key=lambda s: keys[s.name](s) if s.name in keys else s).reset_index(drop=True)
