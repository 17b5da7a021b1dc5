"""Grids of runs: `eac-fastai sweep RECIPE[#cells] key=v1,v2 ...` trains every combination and writes one results CSV.

Each `key=v1,v2,...` is read as the YAML list `[v1,v2,...]` (so `augment.erase.ratio=[0.1,10],[0.3,3.3]` is two
values); a key with one value is a fixed override. A matrix recipe with a `#glob` (or none) sweeps those cells too."""
import itertools, json
from datetime import datetime
from pathlib import Path
import yaml
from rich.markup import escape
from .recipe import RecipeError, load_recipes, recipe_cells, ref_stem
from ..errors import UserError, TrainingDiverged
from ..files import check_output_dir, write_atomic

__all__ = ['parse_grid', 'sweep_plan', 'run_sweep', 'swept_keys', 'SUMMARY']

def parse_grid(args) -> tuple[list[str], dict[str, list]]:
    "Fixed overrides and `{key: values}` of the swept keys from `key=v1,v2,...` arguments (`~key` passes through)."
    fixed, grid = [], {}
    for a in args or []:
        key, eq, raw = a.partition('=')
        if not eq: fixed.append(a); continue
        try: values = yaml.safe_load(f'[{raw}]')
        except yaml.YAMLError as e:
            raise RecipeError(f"sweep argument {a!r}: cannot read the values as a YAML list "
                              f"({str(e).splitlines()[0]})") from None
        if not values: raise RecipeError(f"sweep argument {a!r}: no value after =")
        if len(values) == 1: fixed.append(a)
        else: grid[key] = values
    return fixed, grid

def sweep_plan(ref, args) -> list[dict]:
    "Every run of the sweep, validated before anything trains: `{cell, overrides, values, recipe}` each."
    fixed, grid = parse_grid(args)
    plan, problems = [], []
    for combo in itertools.product(*grid.values()):
        values = dict(zip(grid, combo))
        overrides = fixed + [f'{k}={json.dumps(v)}' for k, v in values.items()]
        try: plan += [dict(cell=cell, overrides=overrides, values=values, recipe=r)
                      for cell, r in load_recipes(ref, overrides).items()]
        except RecipeError as e: problems.append(str(e))
    if problems: raise RecipeError('\n'.join(dict.fromkeys(problems)))
    order = {c: i for i, c in enumerate(recipe_cells(ref))}
    return sorted(plan, key=lambda p: order[p['cell']])    # cell by cell, the grid inside (a stable sort)

SUMMARY = ('last5_mean_accuracy', 'final_accuracy', 'best_accuracy', 'best_epoch', 'epochs',
           'final_flipped_as_given', 'final_flipped_as_clean')    # a run's figures in sweep.csv

def swept_keys(sweep) -> list[str]:
    "The swept keys of a `sweep.csv` frame: its columns other than the cell, the run folder and the runs' figures."
    return [c for c in sweep.columns if c not in ('cell', 'run', 'diverged', *SUMMARY)]

def run_sweep(ref, args, out, train, console=None) -> Path:
    """Train every run of `sweep_plan(ref, args)` with `train(recipe, out, stem)` under a new folder in `out`; returns
    its `sweep.csv` (column `diverged`: the runs whose training diverged, which the others do not stop)."""
    import pandas as pd
    from .build import runtime_problem
    plan = sweep_plan(ref, args)
    needs = {}                                          # one recipe per machine need: a logger's package, compile
    for r in (p['recipe'] for p in plan): needs.setdefault((tuple(r.train.loggers), r.train.compile, r.train.device), r)
    for r in needs.values():
        if problem := runtime_problem(r): raise UserError(problem)    # before the sweep's folder
    folder = check_output_dir(out)/f"{ref_stem(ref)}-sweep-{datetime.now():%Y%m%d-%H%M%S}"
    folder.mkdir(parents=True, exist_ok=False)
    rows = []
    for i, p in enumerate(plan, 1):
        if console:
            console.print(f"[bold]run {i}/{len(plan)}[/] {escape(p['cell'] + ' ' + ' '.join(p['overrides']))}",
                          highlight=False)
        tags = {**p['recipe'].tags, **{k: v if isinstance(v, str) else json.dumps(v) for k, v in p['values'].items()}}
        values = {k: json.dumps(v) if isinstance(v, list) else v for k, v in p['values'].items()}
        # the values travel with the run
        try: run = train(p['recipe'].model_copy(update=dict(tags=tags)), folder, ref_stem(p['cell']))
        except TrainingDiverged as e:                   # the other runs still train; the CLI exits non-zero at the end
            if console: console.print(f"[bold red]diverged:[/] {escape(str(e))}", highlight=False)
            rows.append(dict(cell=p['cell'], **values, run=str(e.run or ''), **dict.fromkeys(SUMMARY), diverged=True))
        else:
            m = json.loads((run/'metrics.json').read_text())
            rows.append(dict(cell=p['cell'], **values, run=str(run), **{k: m.get(k) for k in SUMMARY}, diverged=False))
        # after every run: partial results survive
        write_atomic(folder/'sweep.csv', pd.DataFrame(rows).to_csv(index=False))
    return folder/'sweep.csv'
