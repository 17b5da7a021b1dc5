"Commands on data: check-data, make-noise, make-demo."
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional
import typer
from rich.markup import escape
from ..errors import UserError
from ..files import check_new_file
from .common import OverwriteOpt, Overrides, RecipeArg, app, console, err_console, user_errors

@app.command('check-data')
@user_errors
def check_data(recipe: RecipeArg, overrides: Overrides = None):
    ("Check a recipe's dataset and list every problem at once (CSV rows, splits, classes, each image decoded); "
     "exit code 2 if any.")
    from rich.table import Table
    from ..data.core import check_dataset, imbalance_warning
    from ..training.recipe import load_recipe
    from ..settings import load_settings
    from ..training.build import resolve_data
    r = load_recipe(recipe, overrides)
    src = resolve_data(r, load_settings())
    counts, problems, warnings = check_dataset(src.csv, src.root, r.data.classes, r.data.valid_split)
    if w := imbalance_warning(counts, r.data.sampler): warnings.append(w)
    table = Table(title=f"{src.csv} (images under {src.root})")
    table.add_column('class')
    for split in counts.columns: table.add_column(split, justify='right')
    for label, row in counts.iterrows(): table.add_row(str(label), *map(str, row))
    table.add_row('[bold]total', *(f"[bold]{n}" for n in counts.sum()))
    console.print(table)
    for w in warnings: err_console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
    if problems:
        err_console.print(f"[bold red]{len(problems)} problem(s):[/]", highlight=False)
        for prob in problems: err_console.print(f"  - {escape(prob)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    console.print(f"no problems found: {int(counts.values.sum())} images, {len(counts)} classes, "
                  f"evaluated on split={r.data.valid_split}")

class NoiseKind(str, Enum):
    symmetric = 'symmetric'
    pairflip = 'pairflip'
    matrix = 'matrix'

@app.command('make-noise')
@user_errors
def make_noise(csv: Annotated[Path, typer.Argument(help="label CSV (image, label, split[, clean_label])")],
               output: Annotated[Path, typer.Option('-o', '--output', help="noisy CSV to write")],
               rate: Annotated[float, typer.Option(help="noise rate for symmetric / pairflip")] = 0.2,
               kind: Annotated[NoiseKind, typer.Option(
                   help="symmetric, pairflip (class j → j+1 in the class order), or matrix (--matrix)")
               ] = NoiseKind.symmetric,
               matrix: Annotated[Optional[Path], typer.Option(
                   help="CSV noise matrix, rows = given, columns = true class")] = None,
               seed: int = 0,
               exact: Annotated[bool, typer.Option(
                   help="--exact: exact counts per class; --no-exact: independent draws (SCN's generator)")] = True,
               splits: Annotated[str, typer.Option(help="comma-separated splits to corrupt")] = 'train',
               classes: Annotated[Optional[str], typer.Option(
                   help="comma-separated class order (symmetric's default: sorted labels)")] = None,
               recipe: Annotated[Optional[str], typer.Option(
                   help="take the class order from this recipe's data.classes (the model's output order)")] = None,
               overwrite: OverwriteOpt = False):
    """Add seeded synthetic label noise to a label CSV; the true label is kept in clean_label. Pair-flip and a matrix
    depend on the class order: give it (--classes or --recipe); it is printed."""
    from ..data.core import read_label_csv
    from ..data.noise import (add_label_noise, noise_matrix_from_csv, pairflip_noise_matrix, symmetric_noise_matrix,
                              actual_noise_rate)
    from ..files import write_atomic
    check_new_file(output, overwrite)
    if classes and recipe: raise UserError("give the class order once: --classes or --recipe, not both")
    if kind == NoiseKind.matrix and matrix is None: raise UserError("--kind matrix needs --matrix FILE")
    order = classes.split(',') if classes else _recipe_classes(recipe) if recipe else None
    df, vocab = read_label_csv(csv, order)
    if kind != NoiseKind.symmetric and order is None:
        raise UserError(f"--kind {kind.value} depends on the class order, and none was given: pass --recipe "
                        f"RECIPE.yaml (its data.classes) or --classes; the sorted labels would be --classes "
                        f"'{','.join(vocab)}'")
    wanted = [s.strip() for s in splits.split(',')]
    if absent := [s for s in wanted if not (df.split == s).any()]:
        raise UserError(f"{csv}: no rows with split {', '.join(absent)} (--splits)")
    try:
        if kind == NoiseKind.matrix: m = noise_matrix_from_csv(matrix, len(vocab))
        else: m = (symmetric_noise_matrix if kind == NoiseKind.symmetric else pairflip_noise_matrix)(len(vocab), rate)
        noisy = add_label_noise(df, vocab, m, seed=seed, exact=exact, splits=wanted)
    except ValueError as e: raise UserError(f"{csv}: {e}") from None
    write_atomic(output, noisy.to_csv(index=False))
    rows = noisy.split.isin(wanted)
    if kind == NoiseKind.pairflip: console.print(f"pair-flip: {' → '.join([*vocab, vocab[0]])}", highlight=False)
    elif kind == NoiseKind.matrix: console.print(f"matrix rows and columns: {', '.join(vocab)}", highlight=False)
    console.print(f"{rows.sum()} rows of split {splits}: "
                  f"{actual_noise_rate(noisy.label[rows], noisy.clean_label[rows]):.2%} "
                  f"labels changed → {output}", highlight=False)

def _recipe_classes(recipe:str) -> list[str]:
    "The `data.classes` of `recipe` (of every cell of a matrix, which must agree); a `UserError` when it sets none."
    from ..training.recipe import load_recipes
    orders = {tuple(r.data.classes or ()) for r in load_recipes(recipe).values()}
    if len(orders) > 1: raise UserError(f"{recipe}: its cells order the classes differently; name one cell (FILE#cell)")
    if not (classes := list(orders.pop())):
        raise UserError(f"{recipe}: sets no data.classes (its model takes the sorted labels); give --classes")
    return classes

@app.command('make-demo')
@user_errors
def make_demo(dest: Annotated[Path, typer.Argument(help="folder to create (must not exist)")],
              n_train: int = 100, n_valid: int = 30, n_test: int = 30, size: int = 64,
              noise: float = 0.3, seed: int = 0):
    "Generate the synthetic facial-expression demo dataset (PNGs + labels.csv with noisy and clean labels)."
    from pydantic import ValidationError
    from ..data.demo import DemoSpec, make_demo_dataset
    from ..training.schema import DemoData
    from ..files import check_output_dir
    if dest.exists(): raise UserError(f"{dest}: already exists; choose a new folder")
    check_output_dir(dest.parent)
    try: spec = DemoData(n_train=n_train, n_valid=n_valid, n_test=n_test, size=size, noise=noise, seed=seed)
    except ValidationError as e:
        raise UserError('; '.join(f"--{'-'.join(str(l) for l in err['loc']).replace('_', '-')}: {err['msg']}"
                                  for err in e.errors())) from None
    csv = make_demo_dataset(dest, DemoSpec(**spec.model_dump()))
    console.print(f"demo data → {csv}", highlight=False)
