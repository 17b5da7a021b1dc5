"The `eac-fastai` command line: train (and --resume), validate, check-data, lr-find, sweep, table, report, label-issues, predict, make-noise, make-demo, convert."
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

RecipeArg = Annotated[str, typer.Argument(help="recipe YAML file, or FILE#cell of a matrix recipe")]
Overrides = Annotated[Optional[list[str]], typer.Argument(help="overrides: key.sub=value (YAML-typed), ~key.sub to delete")]
OutOpt = Annotated[Optional[Path], typer.Option('--out', help="parent of the run directory (default: settings.ini's runs)")]

@app.command()
@user_errors
def train(recipe: Annotated[Optional[str], typer.Argument(help="recipe YAML file, or FILE#cell of a matrix recipe")] = None,
          overrides: Overrides = None, out: OutOpt = None,
          resume: Annotated[Optional[Path], typer.Option('--resume', help="continue this interrupted run folder after its last finished epoch")] = None,
          nproc: Annotated[int, typer.Option('--nproc', help="train in this many processes on this machine (one per GPU; gloo on CPU), through torchrun")] = 1):
    "Train a recipe; writes a new run directory (recipe, env, history, checkpoints, predictions, metrics.json)."
    from .recipe import load_recipe, ref_stem
    from .train import check_distributable, resume_run, train_recipe
    if resume is not None:
        if recipe or overrides or out: raise UserError(f"--resume {resume} continues that run with its own recipe.yaml; give no recipe, overrides or --out")
        if nproc != 1: raise UserError("--resume continues a run in one process; drop --nproc")
        return resume_run(resume, console=console)
    if recipe is None: raise UserError("give a recipe (eac-fastai train RECIPE.yaml) or an interrupted run (eac-fastai train --resume RUN)")
    r = load_recipe(recipe, overrides)
    if nproc == 1: return train_recipe(r, out, stem=ref_stem(recipe), console=console)
    from .data import label_frame
    from .distributed import launch
    from .settings import load_settings
    from .train import resolve_data
    check_distributable(r)
    src = resolve_data(r, load_settings())
    label_frame(src.csv, src.root, r.data.classes, r.data.valid_split)      # bad data: one message here, not one per process
    raise typer.Exit(launch(nproc, ['train', recipe, *(overrides or []), *(['--out', str(out)] if out else [])]))

@app.command()
@user_errors
def validate(recipe: RecipeArg, overrides: Overrides = None):
    "Check a recipe and print it resolved (missing files are warnings); a matrix without #cell: check and list every cell."
    from rich.table import Column, Table
    from .recipe import load_recipes, recipe_yaml
    from .settings import load_settings
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

@app.command('check-data')
@user_errors
def check_data(recipe: RecipeArg, overrides: Overrides = None):
    "Check a recipe's dataset and list every problem at once (CSV rows, splits, classes, each image decoded); exit code 2 if any."
    from rich.table import Table
    from .data import check_dataset
    from .recipe import load_recipe
    from .settings import load_settings
    from .train import resolve_data
    r = load_recipe(recipe, overrides)
    src = resolve_data(r, load_settings())
    counts, problems = check_dataset(src.csv, src.root, r.data.classes, r.data.valid_split)
    table = Table(title=f"{src.csv} (images under {src.root})")
    table.add_column('class')
    for split in counts.columns: table.add_column(split, justify='right')
    for label, row in counts.iterrows(): table.add_row(str(label), *map(str, row))
    table.add_row('[bold]total', *(f"[bold]{n}" for n in counts.sum()))
    console.print(table)
    if problems:
        err_console.print(f"[bold red]{len(problems)} problem(s):[/]", highlight=False)
        for prob in problems: err_console.print(f"  - {prob}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    console.print(f"no problems found: {int(counts.values.sum())} images, {len(counts)} classes, evaluated on split={r.data.valid_split}")

def _warn_missing(r, settings):
    "Warn about the files and folders recipe `r` names that do not exist yet."
    from .train import resolve_data
    src = resolve_data(r, settings, create=False)
    paths = [('data.csv', src.csv, Path.is_file)] if r.data.demo is None else []
    if r.data.root: paths.append(('data.root', src.root, Path.is_dir))
    if r.model.weights: paths.append(('model.weights', settings.weights_path(r.model.weights), Path.is_file))
    for key, p, exists in paths:
        if not exists(p): console.print(f"[yellow]warning:[/] {key}: {p} does not exist yet (or is not a {'folder' if exists is Path.is_dir else 'file'})", highlight=False)

@app.command()
@user_errors
def sweep(recipe: Annotated[str, typer.Argument(help="recipe YAML, FILE#cell, or FILE#glob of a matrix recipe (all cells without #)")],
          grid: Annotated[Optional[list[str]], typer.Argument(help="key=v1,v2,... (values read as a YAML list); key=v or ~key: fixed")] = None,
          out: OutOpt = None,
          dry_run: Annotated[bool, typer.Option('--dry-run', help="list the runs and exit")] = False):
    "Train every combination of the given values (and matrix cells); writes each run and one sweep.csv in a new folder."
    from .settings import load_settings
    from .sweep import run_sweep, sweep_plan
    from .train import train_recipe
    if dry_run:
        plan = sweep_plan(recipe, grid)
        for p in plan: console.print(f"{p['cell']} {' '.join(p['overrides'])}", highlight=False)
        console.print(f"{len(plan)} run(s)"); return
    csv = run_sweep(recipe, grid, out or load_settings().runs, lambda r, o, stem: train_recipe(r, o, stem, console=console), console)
    _print_sweep(csv)
    console.print(f"[green]sweep done:[/] {csv} (eac-fastai report {csv.parent}: curves of every run)", highlight=False)

def _print_sweep(csv:Path):
    "The runs of a sweep side by side: accuracy (%) and, where logged, the share of flipped labels fitted as given."
    import pandas as pd
    from rich.table import Table
    from .recipe import ref_stem
    from .sweep import swept_keys
    df = pd.read_csv(csv)
    mem = 'final_flipped_as_given' in df
    view = Table('run', *swept_keys(df), 'last-5 %', 'final %', 'best %',
                 *(['flipped → given %', 'flipped → clean %'] if mem else []), title=f"{len(df)} run(s)")
    pct = lambda v: '' if pd.isna(v) else f"{100*v:.1f}"
    for r in df.to_dict('records'):
        view.add_row(ref_stem(r['cell']), *(str(r[k]) for k in swept_keys(df)), *(pct(r[k]) for k in (
            'last5_mean_accuracy', 'final_accuracy', 'best_accuracy',
            *(['final_flipped_as_given', 'final_flipped_as_clean'] if mem else []))))
    console.print(view)

@app.command()
@user_errors
def table(runs: Annotated[list[Path], typer.Argument(help="run folders, or folders holding runs (searched recursively)")],
          csv: Annotated[Optional[Path], typer.Option('--csv', help="also write the table as CSV")] = None):
    "Lay finished runs out like the supplementary's Table 1: our last-5 mean test accuracy (%) beside the paper's."
    import pandas as pd
    from rich.table import Table
    from .runs import write_atomic
    from .table import DATASET_ORDER, collect_runs, results_table
    t = results_table(collect_runs(runs))
    datasets = sorted(set(t.dataset), key=lambda d: (DATASET_ORDER.index(d) if d in DATASET_ORDER else len(DATASET_ORDER), d))
    view = Table('init', 'noise %', 'method', 'variant', *[f'{d}\nours (paper)' for d in datasets], title="last-5 mean test accuracy (%)")
    for (init, noise, method, variant), g in t.groupby(['init', 'noise', 'method', 'variant'], sort=False, dropna=False):
        cells = {r.dataset: f"{r.last5:.2f}" + (f" ({r.paper:.2f})" if pd.notna(r.paper) else '') + (f" ×{r.runs}" if r.runs > 1 else '')
                 for r in g.itertuples()}
        view.add_row(str(init), '' if noise != noise else str(noise), str(method), variant, *[cells.get(d, '') for d in datasets])
    console.print(view)
    if csv: write_atomic(csv, t.to_csv(index=False)); console.print(f"→ {csv}", highlight=False)

@app.command('lr-find')
@user_errors
def lr_find(recipe: RecipeArg, overrides: Overrides = None, out: OutOpt = None):
    "Run fastai's lr_find on a recipe; saves lr_find.png and lr_find.json (all suggestions) in a new run directory."
    from .recipe import load_recipe, ref_stem
    from .train import lr_find_recipe
    run, lr = lr_find_recipe(load_recipe(recipe, overrides), out, stem=f'{ref_stem(recipe)}-lr-find')
    console.print(f"suggested lr {lr:.3e} → {run/'lr_find.png'}", highlight=False)

CheckpointOpt = Annotated[str, typer.Option(help="the run's model: last (the final epoch's) or best (best evaluation accuracy)")]

@app.command()
@user_errors
def report(path: Annotated[Path, typer.Argument(help="a run folder (eac-fastai train) or a sweep folder (eac-fastai sweep)")],
           output: Annotated[Optional[Path], typer.Option('-o', '--output', help="HTML file (default: PATH/report.html)")] = None,
           checkpoint: CheckpointOpt = 'last',
           overwrite: Annotated[bool, typer.Option(help="replace an existing report")] = False):
    "One self-contained HTML page: metrics, curves with memorisation, confusion matrix, attention maps, t-SNE, label issues, recipe."
    from .report import write_report
    console.print(f"report → {write_report(path, output, overwrite, checkpoint=checkpoint)}", highlight=False)

@app.command('label-issues')
@user_errors
def label_issues(run: Annotated[Path, typer.Argument(help="a run folder (its data must be where its recipe says)")],
                 output: Annotated[Optional[Path], typer.Option('-o', '--output', help="CSV to write (default: RUN/label_issues.csv)")] = None,
                 by: Annotated[str, typer.Option(help="confident: confidently another class (confident learning); argmax: predicted as another class")] = 'confident',
                 checkpoint: CheckpointOpt = 'last',
                 overwrite: Annotated[bool, typer.Option(help="replace an existing CSV")] = False):
    "Rank the training images by how much the model doubts their given label (cleanlab's columns); precision/recall vs clean labels."
    from .analysis import training_outputs
    from .label_issues import ISSUE_RULES, issue_detection_scores, label_issues_frame
    from .runs import write_atomic
    from .train import load_run
    if by not in ISSUE_RULES: raise UserError(f"--by {by}: choose one of {', '.join(ISSUE_RULES)}")
    output = output or run/'label_issues.csv'
    if output.exists() and not overwrite: raise UserError(f"{output}: already exists; pass --overwrite or choose another -o")
    _, learn = load_run(run, checkpoint)
    out = training_outputs(learn)
    frame = label_issues_frame(out.items, out.labels, out.probs, list(learn.dls.vocab), out.clean, by)
    write_atomic(output, frame.to_csv(index=False))
    console.print(f"{int(frame.is_label_issue.sum())} of {len(frame)} training images flagged → {output}", highlight=False)
    if s := issue_detection_scores(frame):
        console.print(f"against the clean labels: precision {s['precision'] or 0:.3f} ({s['true_positives']}/{s['flagged']}), "
                      f"recall {s['recall'] or 0:.3f} ({s['true_positives']}/{s['noisy']} flipped labels)", highlight=False)

@app.command()
@user_errors
def predict(source: Annotated[Path, typer.Argument(help="a run folder (its recipe + models/CHECKPOINT.pth) or an export .pkl")],
            images: Annotated[list[Path], typer.Argument(help="image files or folders (searched recursively)")],
            output: Annotated[Optional[Path], typer.Option('-o', '--output', help="CSV to write (default: print CSV)")] = None,
            checkpoint: CheckpointOpt = 'last', bs: int = 64,
            overwrite: Annotated[bool, typer.Option(help="replace an existing CSV")] = False,
            trust_pickle: Annotated[bool, typer.Option('--trust-pickle', help="load an export .pkl (a pickle can run code: only files you made)")] = False):
    "Class probabilities for images: one row per image with the predicted class and prob_<class> columns."
    from .predict import image_files, inference_learner, predict_images
    from .runs import check_output_dir, write_atomic
    if output is not None:
        if output.exists() and not overwrite: raise UserError(f"{output}: already exists; pass --overwrite or choose another -o")
        check_output_dir(output.parent)
    files = image_files(images)
    preds = predict_images(inference_learner(source, files, checkpoint, bs, trust_pickle), files, bs)
    if output is None: print(preds.to_csv(index=False), end='')
    else:
        write_atomic(output, preds.to_csv(index=False))
        console.print(f"{len(preds)} images → {output}", highlight=False)

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
               matrix: Annotated[Optional[Path], typer.Option(help="CSV noise matrix, rows = given, columns = true class")] = None,
               seed: int = 0,
               exact: Annotated[bool, typer.Option(help="--exact: exact counts per class; --no-exact: independent draws (SCN's generator)")] = True,
               splits: Annotated[str, typer.Option(help="comma-separated splits to corrupt")] = 'train',
               classes: Annotated[Optional[str], typer.Option(
                   help="comma-separated class order (symmetric's default: sorted labels)")] = None,
               recipe: Annotated[Optional[str], typer.Option(
                   help="take the class order from this recipe's data.classes (the model's output order)")] = None,
               overwrite: bool = False):
    """Add seeded synthetic label noise to a label CSV; the true label is kept in clean_label. Pair-flip and a matrix
    depend on the class order: give it (--classes or --recipe); it is printed."""
    from .data import read_label_csv
    from .noise import add_label_noise, noise_matrix_from_csv, pairflip_noise_matrix, symmetric_noise_matrix, actual_noise_rate
    from .runs import check_output_dir, write_atomic
    if output.exists() and not overwrite: raise UserError(f"{output}: already exists; choose another --output or pass --overwrite")
    check_output_dir(output.parent)
    if classes and recipe: raise UserError("give the class order once: --classes or --recipe, not both")
    if kind == NoiseKind.matrix and matrix is None: raise UserError("--kind matrix needs --matrix FILE")
    order = classes.split(',') if classes else _recipe_classes(recipe) if recipe else None
    df, vocab = read_label_csv(csv, order)
    if kind != NoiseKind.symmetric and order is None:
        raise UserError(f"--kind {kind.value} depends on the class order, and none was given: pass --recipe "
                        f"RECIPE.yaml (its data.classes) or --classes; the sorted labels would be --classes "
                        f"'{','.join(vocab)}'")
    wanted = [s.strip() for s in splits.split(',')]
    if absent := [s for s in wanted if not (df.split == s).any()]: raise UserError(f"{csv}: no rows with split {', '.join(absent)} (--splits)")
    try:
        if kind == NoiseKind.matrix: m = noise_matrix_from_csv(matrix, len(vocab))
        else: m = (symmetric_noise_matrix if kind == NoiseKind.symmetric else pairflip_noise_matrix)(len(vocab), rate)
        noisy = add_label_noise(df, vocab, m, seed=seed, exact=exact, splits=wanted)
    except ValueError as e: raise UserError(f"{csv}: {e}") from None
    write_atomic(output, noisy.to_csv(index=False))
    rows = noisy.split.isin(wanted)
    if kind == NoiseKind.pairflip: console.print(f"pair-flip: {' → '.join([*vocab, vocab[0]])}", highlight=False)
    elif kind == NoiseKind.matrix: console.print(f"matrix rows and columns: {', '.join(vocab)}", highlight=False)
    console.print(f"{rows.sum()} rows of split {splits}: {actual_noise_rate(noisy.label[rows], noisy.clean_label[rows]):.2%} "
                  f"labels changed → {output}", highlight=False)

def _recipe_classes(recipe:str) -> list[str]:
    "The `data.classes` of `recipe` (of every cell of a matrix, which must agree); a `UserError` when it sets none."
    from .recipe import load_recipes
    orders = {tuple(r.data.classes or ()) for r in load_recipes(recipe).values()}
    if len(orders) > 1: raise UserError(f"{recipe}: its cells order the classes differently; name one cell (FILE#cell)")
    if not (classes := list(orders.pop())):
        raise UserError(f"{recipe}: sets no data.classes (its model takes the sorted labels); give --classes")
    return classes

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

class FerplusMode(str, Enum):
    majority = 'majority'
    argmax = 'argmax'

ImagesOpt = Annotated[Optional[str], typer.Option(help="images folder, relative to the CSV's folder (default: the CSV's name without .csv)")]
WorkersOpt = Annotated[int, typer.Option('--workers', help="threads that decode and write images (0: none)")]
ReplaceOpt = Annotated[bool, typer.Option(help="replace an existing CSV and its whole images folder")]

@convert_app.command('ferplus')
@user_errors
def convert_ferplus(fer2013: Annotated[Path, typer.Argument(help="fer2013.csv (emotion, pixels, Usage)")],
                    fer2013new: Annotated[Path, typer.Argument(help="FERPlus fer2013new.csv (Usage, Image name, 10 vote columns)")],
                    output: Annotated[Path, typer.Option('-o', '--output', help="CSV to write; image paths are relative to its folder")],
                    mode: Annotated[FerplusMode, typer.Option(help="majority: more than half the votes (Microsoft); argmax: most votes, ties dropped (SCN)")] = FerplusMode.majority,
                    classes: Annotated[int, typer.Option(help="7 (contempt dropped) or 8")] = 7,
                    images: ImagesOpt = None, workers: WorkersOpt = 8, overwrite: ReplaceOpt = False):
    "Convert FERPlus (fer2013.csv pixels + fer2013new.csv votes) into the noisy-label CSV and 48×48 PNGs."
    from .convert import convert_ferplus as convert, conversion_summary
    df = convert(fer2013, fer2013new, output, mode.value, classes, images, workers, overwrite)
    console.print(f"{conversion_summary(df)} → {output}", highlight=False)

@convert_app.command('affectnet')
@user_errors
def convert_affectnet(training: Annotated[Path, typer.Argument(help="AffectNet training.csv (Manually_Annotated_file_lists)")],
                      validation: Annotated[Path, typer.Argument(help="AffectNet validation.csv; becomes the test split")],
                      images_root: Annotated[Path, typer.Argument(help="the Manually_Annotated_Images folder")],
                      output: Annotated[Path, typer.Option('-o', '--output', help="CSV to write; image paths are relative to its folder")],
                      classes: Annotated[int, typer.Option(help="7 (contempt dropped) or 8")] = 7,
                      size: Annotated[Optional[int], typer.Option(help="resize the face crops to SIZE×SIZE (default: keep the crop size)")] = None,
                      ext: Annotated[str, typer.Option(help=".jpg or .png for the crops")] = '.jpg',
                      images: ImagesOpt = None, workers: WorkersOpt = 8, overwrite: ReplaceOpt = False):
    "Convert AffectNet (manually annotated) into the noisy-label CSV and face crops; unusable rows are skipped and counted."
    from .convert import convert_affectnet as convert, conversion_summary
    df = convert(training, validation, images_root, output, classes, size, ext, images, workers, overwrite)
    console.print(f"{conversion_summary(df)} → {output}", highlight=False)

@convert_app.command('cifar100')
@user_errors
def convert_cifar100(cifar_root: Annotated[Path, typer.Argument(help="the cifar-100-python folder (train, test, meta)")],
                     output: Annotated[Path, typer.Option('-o', '--output', help="CSV to write; image paths are relative to its folder")],
                     images: ImagesOpt = None, workers: WorkersOpt = 8, overwrite: ReplaceOpt = False):
    "Convert CIFAR-100 (python version) into the noisy-label CSV and 32×32 PNGs."
    from .convert import convert_cifar100 as convert, conversion_summary
    df = convert(cifar_root, output, images, workers, overwrite)
    console.print(f"{conversion_summary(df)} → {output}", highlight=False)

@convert_app.command('fashion-mnist')
@user_errors
def convert_fashion_mnist(root: Annotated[Optional[Path], typer.Argument(help="folder of the four IDX .gz files (default: Debian's dataset-fashion-mnist)")] = None,
                          output: Annotated[Path, typer.Option('-o', '--output', help="CSV to write; image paths are relative to its folder")] = ...,
                          train_subset: Annotated[Optional[int], typer.Option(help="keep this many training images, equally many per class")] = None,
                          seed: Annotated[int, typer.Option(help="seed of the training subset")] = 0,
                          images: ImagesOpt = None, workers: WorkersOpt = 8, overwrite: ReplaceOpt = False):
    "Convert Fashion-MNIST (IDX files) into the noisy-label CSV and 28×28 PNGs; its class order is data.classes in recipes/fmnist.yaml."
    from .convert import FASHION_MNIST_DIR, convert_fashion_mnist as convert, conversion_summary
    df = convert(root or FASHION_MNIST_DIR, output, train_subset, seed, images, workers, overwrite)
    console.print(f"{conversion_summary(df)} → {output}", highlight=False)

@convert_app.command('tinyimagenet')
@user_errors
def convert_tinyimagenet(root: Annotated[Path, typer.Argument(help="the tiny-imagenet-200 folder (wnids.txt, train/, val/)")],
                         output: Annotated[Path, typer.Option('-o', '--output', help="CSV to write; image paths are relative to its folder")],
                         check_images: Annotated[bool, typer.Option(help="require every annotated val image to exist")] = True,
                         overwrite: bool = False):
    "Convert Tiny-ImageNet into the noisy-label CSV (images stay where they are; val becomes the test split)."
    from .convert import convert_tinyimagenet as convert, conversion_summary
    df = convert(root, output, check_images, overwrite)
    console.print(f"{conversion_summary(df)} → {output}", highlight=False)

@convert_app.command('imagefolder')
@user_errors
def convert_imagefolder(root: Annotated[Path, typer.Argument(help="root/<class>/<image> or root/<train|valid|val|test>/<class>/<image>")],
                        output: Annotated[Path, typer.Option('-o', '--output', help="CSV to write; image paths are relative to its folder")],
                        valid_pct: Annotated[float, typer.Option(help="share of each class's train images moved to valid")] = 0.,
                        seed: int = 42, overwrite: bool = False):
    "Convert a folder-per-class image tree into the noisy-label CSV (images stay where they are)."
    from .convert import convert_imagefolder as convert, conversion_summary
    df = convert(root, output, valid_pct, seed, overwrite)
    console.print(f"{conversion_summary(df)} → {output}", highlight=False)
