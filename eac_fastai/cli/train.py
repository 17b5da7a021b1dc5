"Commands that train: train (and --resume), validate, lr-find, sweep."
from pathlib import Path
from typing import Annotated, Optional
import typer
from rich.syntax import Syntax
from rich.markup import escape
from ..errors import UserError
from .common import OutOpt, Overrides, RecipeArg, app, console, user_errors

@app.command()
@user_errors
def train(recipe: Annotated[Optional[str], typer.Argument(help="recipe YAML file, or FILE#cell "
                                                               "of a matrix recipe")] = None,
          overrides: Overrides = None, out: OutOpt = None,
          resume: Annotated[Optional[Path], typer.Option('--resume', help="continue this interrupted run folder "
                                                                          "after its last finished epoch")] = None,
          nproc: Annotated[int, typer.Option('--nproc', help="train in this many processes on this machine "
                                                             "(one per GPU; gloo on CPU), through torchrun")] = 1):
    "Train a recipe; writes a new run directory (recipe, env, history, checkpoints, predictions, metrics.json)."
    from ..training.recipe import load_recipe, ref_stem
    from ..training.build import check_distributable, runtime_problem
    from ..training.fit import resume_run, train_recipe
    from ..models.weights import is_torchvision_weights, torchvision_state_dict, torchvision_weights
    if resume is not None:
        if recipe or overrides or out: raise UserError(f"--resume {resume} continues that run with its own "
                                                       "recipe.yaml; give no recipe, overrides or --out")
        if nproc != 1: raise UserError("--resume continues a run in one process; drop --nproc")
        return resume_run(resume, console=console)
    if recipe is None: raise UserError("give a recipe (eac-fastai train RECIPE.yaml) "
                                       "or an interrupted run (eac-fastai train --resume RUN)")
    r = load_recipe(recipe, overrides)
    if nproc == 1: return train_recipe(r, out, stem=ref_stem(recipe), console=console)
    from ..data.core import label_frame
    from ..training.distributed import launch
    from ..settings import load_settings
    from ..training.build import resolve_data
    check_distributable(r)
    # what every process would refuse: one message here, not one per process
    if problem := runtime_problem(r): raise UserError(problem)
    src = resolve_data(r, load_settings())
    label_frame(src.csv, src.root, r.data.classes, r.data.valid_split)
    if is_torchvision_weights(r.model.weights):                   # downloaded once, here, not by every process
        torchvision_state_dict(torchvision_weights(r.model.arch, r.model.weights))
    raise typer.Exit(launch(nproc, ['train', recipe, *(overrides or []), *(['--out', str(out)] if out else [])]))

@app.command()
@user_errors
def validate(recipe: RecipeArg, overrides: Overrides = None):
    ("Check a recipe and print it resolved (missing files, and what this machine lacks for it, are warnings); a matrix "
     "without #cell: check and list every cell.")
    from rich.table import Column, Table
    from ..training.recipe import load_recipes, recipe_yaml
    from ..settings import load_settings
    settings, recipes = load_settings(), load_recipes(recipe, overrides)
    if list(recipes) == [recipe]:
        r = recipes[recipe]
        console.print(Syntax(recipe_yaml(r), 'yaml'))
        _warn_missing(r, settings)
        console.print(f"[green]ok:[/] {recipe}", highlight=False)
        return
    table = Table('method', 'data', 'arch', 'weights', 'bs', 'lr', 'epochs', title=f"{recipe}: {len(recipes)} recipes")
    table.columns.insert(0, Column('cell', no_wrap=True))
    for ref, r in recipes.items():
        table.add_row(ref.partition('#')[2], r.method, r.data.csv or 'demo', r.model.arch, r.model.weights or '-',
                      str(r.data.bs), str(r.train.lr), str(r.train.epochs))
    console.print(table)
    console.print(f"[green]ok:[/] {len(recipes)} recipes in {recipe}", highlight=False)

@app.command('lr-find')
@user_errors
def lr_find(recipe: RecipeArg, overrides: Overrides = None, out: OutOpt = None):
    "Run fastai's lr_find on a recipe; saves lr_find.png and lr_find.json (all suggestions) in a new run directory."
    from ..training.recipe import load_recipe, ref_stem
    from ..training.fit import lr_find_recipe
    run, lr = lr_find_recipe(load_recipe(recipe, overrides), out, stem=f'{ref_stem(recipe)}-lr-find')
    console.print(f"suggested lr {lr:.3e} → {run/'lr_find.png'}", highlight=False)

@app.command()
@user_errors
def sweep(recipe: Annotated[str, typer.Argument(help="recipe YAML, FILE#cell, or FILE#glob of a matrix recipe "
                                                     "(all cells without #)")],
          grid: Annotated[Optional[list[str]], typer.Argument(help="key=v1,v2,... (values read as a YAML list); "
                                                                  "key=v or ~key: fixed")] = None,
          out: OutOpt = None,
          dry_run: Annotated[bool, typer.Option('--dry-run', help="list the runs and exit")] = False):
    "Train every combination of the given values (and matrix cells); writes each run and one sweep.csv in a new folder."
    import pandas as pd
    from ..errors import TrainingDiverged
    from ..settings import load_settings
    from ..training.sweep import run_sweep, sweep_plan
    from ..training.fit import train_recipe
    if dry_run:
        plan = sweep_plan(recipe, grid)
        for p in plan: console.print(escape(f"{p['cell']} {' '.join(p['overrides'])}"), highlight=False)
        console.print(f"{len(plan)} run(s)"); return
    csv = run_sweep(recipe, grid, out or load_settings().runs,
                    lambda r, o, stem: train_recipe(r, o, stem, console=console), console)
    _print_sweep(csv)
    if (diverged := pd.read_csv(csv).diverged).any():
        raise TrainingDiverged(f"{diverged.sum()} of {len(diverged)} runs diverged (column diverged of {csv}); "
                               "the others finished")
    console.print(f"[green]sweep done:[/] {csv} (eac-fastai report {csv.parent}: curves of every run)", highlight=False)

def _print_sweep(csv:Path):
    "The runs of a sweep side by side: accuracy (%) and, where logged, the share of flipped labels fitted as given."
    import pandas as pd
    from rich.table import Table
    from ..training.recipe import ref_stem
    from ..training.sweep import swept_keys
    df = pd.read_csv(csv)
    mem = 'final_flipped_as_given' in df
    view = Table('run', *swept_keys(df), 'last-5 %', 'final %', 'best %',
                 *(['flipped → given %', 'flipped → clean %'] if mem else []), title=f"{len(df)} run(s)")
    pct = lambda v: '' if pd.isna(v) else f"{100*v:.1f}"
    for r in df.to_dict('records'):
        name = ref_stem(r['cell']) + (' [red](diverged)' if r.get('diverged') is True else '')
        view.add_row(name, *(str(r[k]) for k in swept_keys(df)), *(pct(r.get(k)) for k in (
            'last5_mean_accuracy', 'final_accuracy', 'best_accuracy',
            *(['final_flipped_as_given', 'final_flipped_as_clean'] if mem else []))))
    console.print(view)

def _warn_missing(r, settings):
    "Warn about the files and folders recipe `r` names that do not exist yet, and what this machine lacks for it."
    from ..training.build import resolve_data
    from ..models.weights import is_torchvision_weights, torchvision_weights, weights_cache_file
    src = resolve_data(r, settings, create=False)
    paths = [('data.csv', src.csv, Path.is_file)] if r.data.demo is None else []
    if r.data.root: paths.append(('data.root', src.root, Path.is_dir))
    if is_torchvision_weights(w := r.model.weights):
        tv = torchvision_weights(r.model.arch, w)
        if not (cached := weights_cache_file(tv)).is_file():
            console.print(f"[yellow]note:[/] model.weights: {w}: torchvision's {tv} is not in torch's cache yet: the "
                          f"first run downloads {tv.url} to {escape(str(cached))}", highlight=False)
    elif w: paths.append(('model.weights', settings.weights_path(w), Path.is_file))
    from ..training.build import runtime_problem
    try: problem = runtime_problem(r)
    except UserError as e: problem = str(e)
    if problem:
        console.print(f"[yellow]warning:[/] {escape(problem)} (train would refuse it here)", highlight=False)
    for key, p, exists in paths:
        if not exists(p):
            console.print(f"[yellow]warning:[/] {key}: {escape(str(p))} does not exist yet "
                          f"(or is not a {'folder' if exists is Path.is_dir else 'file'})", highlight=False)
