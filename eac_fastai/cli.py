"The `eac-fastai` command line: train, validate, lr-find, make-noise, make-demo, convert."
import warnings
from enum import Enum
from functools import wraps
from pathlib import Path
from typing import Annotated, Optional
import typer
from rich.console import Console
from rich.syntax import Syntax
from .errors import UserError

app = typer.Typer(no_args_is_help=True, pretty_exceptions_show_locals=False, add_completion=False)
convert_app = typer.Typer(no_args_is_help=True, help="Convert a dataset's official files into the noisy-label CSV.")
app.add_typer(convert_app, name='convert')
console, err_console = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated', category=FutureWarning)  # raised by fastai's import

def user_errors(f):
    "Report a `UserError` as one red line on stderr and exit with code 2, without a traceback."
    @wraps(f)
    def wrapper(*args, **kwargs):
        try: return f(*args, **kwargs)
        except UserError as e:
            err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2)
    return wrapper

def _version(value:bool):
    if value:
        from . import __version__
        console.print(f"eac-fastai {__version__}"); raise typer.Exit()

@app.callback()
def main(version: Annotated[bool, typer.Option('--version', callback=_version, is_eager=True, help="print the version and exit")] = False):
    "EAC (Erasing Attention Consistency) for noisy-label facial expression recognition, on fastai."

RecipeArg = Annotated[Path, typer.Argument(help="recipe YAML file")]
Overrides = Annotated[Optional[list[str]], typer.Argument(help="overrides: key.sub=value (YAML-typed), ~key.sub to delete")]
OutOpt = Annotated[Optional[Path], typer.Option('--out', help="parent of the run directory (default: settings.ini's runs)")]

@app.command()
@user_errors
def train(recipe: RecipeArg, overrides: Overrides = None, out: OutOpt = None):
    "Train a recipe; writes a new run directory (recipe, env, history, checkpoints, predictions, metrics.json)."
    from .recipe import load_recipe
    from .train import train_recipe
    train_recipe(load_recipe(recipe, overrides), out, stem=recipe.stem, console=console)

@app.command()
@user_errors
def validate(recipe: RecipeArg, overrides: Overrides = None):
    "Check a recipe and print it fully resolved; files it names that do not exist yet are listed as warnings."
    from .recipe import load_recipe, recipe_yaml
    from .settings import load_settings
    from .train import resolve_data
    r, settings = load_recipe(recipe, overrides), load_settings()
    console.print(Syntax(recipe_yaml(r), 'yaml'))
    src = resolve_data(r, settings, create=False)
    paths = [('data.csv', src.csv, Path.is_file)] if r.data.demo is None else []
    if r.data.root: paths.append(('data.root', src.root, Path.is_dir))
    if r.model.weights: paths.append(('model.weights', settings.weights_path(r.model.weights), Path.is_file))
    for key, p, exists in paths:
        if not exists(p): console.print(f"[yellow]warning:[/] {key}: {p} does not exist yet (or is not a {'folder' if exists is Path.is_dir else 'file'})", highlight=False)
    console.print(f"[green]ok:[/] {recipe}", highlight=False)

@app.command('lr-find')
@user_errors
def lr_find(recipe: RecipeArg, overrides: Overrides = None, out: OutOpt = None):
    "Run fastai's lr_find on a recipe; saves lr_find.png and lr_find.json (all suggestions) in a new run directory."
    from .recipe import load_recipe
    from .train import lr_find_recipe
    run, lr = lr_find_recipe(load_recipe(recipe, overrides), out, stem=f'{recipe.stem}-lr-find')
    console.print(f"suggested lr {lr:.3e} → {run/'lr_find.png'}", highlight=False)

class NoiseKind(str, Enum):
    symmetric = 'symmetric'
    pairflip = 'pairflip'
    matrix = 'matrix'

@app.command('make-noise')
@user_errors
def make_noise(csv: Annotated[Path, typer.Argument(help="label CSV (image, label, split[, clean_label])")],
               output: Annotated[Path, typer.Option('-o', '--output', help="noisy CSV to write")],
               rate: Annotated[float, typer.Option(help="noise rate for symmetric / pairflip")] = 0.2,
               kind: Annotated[NoiseKind, typer.Option(help="symmetric, pairflip, or matrix (--matrix)")] = NoiseKind.symmetric,
               matrix: Annotated[Optional[Path], typer.Option(help="CSV noise matrix, rows = given, columns = true class")] = None,
               seed: int = 0,
               exact: Annotated[bool, typer.Option(help="--exact: exact counts per class; --no-exact: independent draws (SCN's generator)")] = True,
               splits: Annotated[str, typer.Option(help="comma-separated splits to corrupt")] = 'train',
               classes: Annotated[Optional[str], typer.Option(help="comma-separated class order (default: sorted labels)")] = None,
               overwrite: bool = False):
    "Add seeded synthetic label noise to a label CSV; the true label is kept in clean_label."
    from .data import read_label_csv
    from .noise import add_label_noise, noise_matrix_from_csv, pairflip_noise_matrix, symmetric_noise_matrix, actual_noise_rate
    from .runs import check_output_dir, write_atomic
    if output.exists() and not overwrite: raise UserError(f"{output}: already exists; choose another --output or pass --overwrite")
    check_output_dir(output.parent)
    df, vocab = read_label_csv(csv, classes.split(',') if classes else None)
    wanted = [s.strip() for s in splits.split(',')]
    if absent := [s for s in wanted if not (df.split == s).any()]: raise UserError(f"{csv}: no rows with split {', '.join(absent)} (--splits)")
    try:
        if kind == NoiseKind.matrix:
            if matrix is None: raise UserError("--kind matrix needs --matrix FILE")
            m = noise_matrix_from_csv(matrix, len(vocab))
        else: m = (symmetric_noise_matrix if kind == NoiseKind.symmetric else pairflip_noise_matrix)(len(vocab), rate)
        noisy = add_label_noise(df, vocab, m, seed=seed, exact=exact, splits=wanted)
    except ValueError as e: raise UserError(f"{csv}: {e}") from None
    write_atomic(output, noisy.to_csv(index=False))
    rows = noisy.split.isin(wanted)
    console.print(f"{rows.sum()} rows of split {splits}: {actual_noise_rate(noisy.label[rows], noisy.clean_label[rows]):.2%} "
                  f"labels changed → {output}", highlight=False)

@app.command('make-demo')
@user_errors
def make_demo(dest: Annotated[Path, typer.Argument(help="folder to create (must not exist)")],
              n_train: int = 100, n_valid: int = 30, n_test: int = 30, size: int = 64, noise: float = 0.3, seed: int = 0):
    "Generate the synthetic facial-expression demo dataset (PNGs + labels.csv with noisy and clean labels)."
    from pydantic import ValidationError
    from .demo import DemoSpec, make_demo_dataset
    from .recipe import DemoData
    from .runs import check_output_dir
    if dest.exists(): raise UserError(f"{dest}: already exists; choose a new folder")
    check_output_dir(dest.parent)
    try: spec = DemoData(n_train=n_train, n_valid=n_valid, n_test=n_test, size=size, noise=noise, seed=seed)
    except ValidationError as e:
        raise UserError('; '.join(f"--{'-'.join(str(l) for l in err['loc']).replace('_', '-')}: {err['msg']}" for err in e.errors())) from None
    csv = make_demo_dataset(dest, DemoSpec(**spec.model_dump()))
    console.print(f"demo data → {csv}", highlight=False)

@convert_app.command('rafdb')
@user_errors
def convert_rafdb(raf_basic: Annotated[Path, typer.Argument(help="the raf-basic folder (EmoLabel/, Image/aligned/)")],
                  output: Annotated[Path, typer.Option('-o', '--output', help="CSV to write; image paths are relative to its folder")],
                  noise: Annotated[Optional[Path], typer.Option(help="EAC noise file (noise01.txt, noise02.txt, noise03.txt) for the train labels")] = None,
                  check_images: Annotated[bool, typer.Option(help="require every aligned image to exist")] = True,
                  overwrite: bool = False):
    "Convert RAF-DB basic (+ an EAC noise file) into the noisy-label CSV."
    from .convert import convert_rafdb as convert
    df = convert(raf_basic, output, noise, check_images, overwrite)
    train = df[df.split == 'train']
    console.print(f"{len(train)} train ({(train.label != train.clean_label).mean():.2%} noisy) + "
                  f"{(df.split == 'test').sum()} test rows → {output}", highlight=False)
