"Commands on finished runs: table, report, label-issues, predict, evaluate, export."
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional
import typer
from ..analysis.outputs import TTA as TTAS
from ..analysis.table import METRICS, PROTOCOLS
from ..errors import UserError
from ..files import check_new_file
from .common import CheckpointOpt, FaceMarginOpt, FaceSizeOpt, OverwriteOpt, app, console, err_console, user_errors

TTA = Enum('TTA', {t: t for t in ('none', *TTAS)}, type=str)     # the CLI's choices: none, or `outputs`' TTAs
Metric = Enum('Metric', {m: m for m in METRICS}, type=str)       # `table --metric`
Protocol = Enum('Protocol', {p: p for p in PROTOCOLS}, type=str)  # `table --protocol`

TTAOpt = Annotated[TTA, typer.Option('--tta', help="flip: average the probabilities of each image and its mirror")]
def _tta(tta) -> str|None: return None if tta == TTA.none else tta.value

@app.command()
@user_errors
def table(runs: Annotated[list[Path], typer.Argument(help="run folders, or folders holding runs "
                                                          "(searched recursively)")],
          csv: Annotated[Optional[Path], typer.Option(
              '--csv', help="also write the table as CSV (every protocol)")] = None,
          metric: Annotated[Metric, typer.Option(help="accuracy, or the mean of the per-class accuracies "
                                                     "(the paper's numbers are accuracy)")] = 'accuracy',
          protocol: Annotated[Optional[list[Protocol]], typer.Option(
              help="how each run's epochs become one number, repeatable: last5 (the mean of the last 5 epochs: EAC's, "
                   "beside the paper's numbers), final (the last epoch: RUL's), best (the best epoch on the evaluation "
                   "split: SCN's paper, NLA's code, LA-Net's; optimistic on the test split)")] = None):
    "Lay finished runs out like the supplementary's Table 1: ours under each protocol asked (%), the paper's beside."
    import pandas as pd
    from rich.table import Table
    from ..files import write_atomic
    from ..analysis.table import DATASET_ORDER, PAPER_PROTOCOL, collect_runs, results_table
    protocols = [p.value for p in protocol or [Protocol(PAPER_PROTOCOL)]]
    protocols = sorted(set(protocols), key=list(PROTOCOLS).index)
    t = results_table(collect_runs(runs, Metric(metric).value))
    datasets = sorted(set(t.dataset),
                      key=lambda d: (DATASET_ORDER.index(d) if d in DATASET_ORDER else len(DATASET_ORDER), d))
    columns = [(d, p) for d in datasets for p in protocols]
    head = lambda d, p: f"{d}\n{p}" + (" (paper)" if p == PAPER_PROTOCOL else '')
    what = 'accuracy' if metric == Metric.accuracy else 'mean class accuracy'
    view = Table('init', 'noise %', 'method', 'variant', *[head(d, p) for d, p in columns],
                 title=f"{what} (%) on each run's evaluation split: " + '; '.join(f"{p}: {PROTOCOLS[p]}"
                                                                            for p in protocols))
    for (init, noise, method, variant), g in t.groupby(['init', 'noise', 'method', 'variant'],
                                                       sort=False, dropna=False):
        cells = {(r.dataset, p): f"{getattr(r, p):.2f}" +
                 (f" ({r.paper:.2f})" if p == PAPER_PROTOCOL and pd.notna(r.paper) else '') +
                 (f" ×{r.runs}" if r.runs > 1 else '')
                 for r in g.itertuples() for p in protocols}
        view.add_row(str(init), '' if noise != noise else str(noise), str(method), variant,
                     *[cells.get(c, '') for c in columns])
    console.print(view)
    if csv: write_atomic(csv, t.to_csv(index=False)); console.print(f"→ {csv}", highlight=False)

@app.command()
@user_errors
def report(path: Annotated[Path, typer.Argument(help="a run folder (eac-fastai train) "
                                                    "or a sweep folder (eac-fastai sweep)")],
           output: Annotated[Optional[Path], typer.Option('-o', '--output',
                                                          help="HTML file (default: PATH/report.html)")] = None,
           checkpoint: CheckpointOpt = 'last',
           overwrite: OverwriteOpt = False):
    ("One self-contained HTML page: metrics, curves with memorisation, confusion matrix, attention maps, t-SNE, "
     "label issues, recipe.")
    from ..analysis.report import write_report
    console.print(f"report → {write_report(path, output, overwrite, checkpoint=checkpoint)}", highlight=False)

@app.command('label-issues')
@user_errors
def label_issues(run: Annotated[Path, typer.Argument(help="a run folder (its data must be where its recipe says)")],
                 output: Annotated[Optional[Path], typer.Option(
                     '-o', '--output', help="CSV to write (default: RUN/label_issues.csv)")] = None,
                 by: Annotated[str, typer.Option(help="confident: confidently another class (confident learning); "
                                                      "argmax: predicted as another class")] = 'confident',
                 checkpoint: CheckpointOpt = 'last',
                 overwrite: OverwriteOpt = False):
    ("Rank the training images by how much the model doubts their given label (cleanlab's columns); "
     "precision/recall vs clean labels.")
    from ..analysis.outputs import training_outputs
    from ..analysis.label_issues import ISSUE_RULES, issue_detection_scores, label_issues_frame
    from ..files import write_atomic
    from ..training.runs import load_run
    if by not in ISSUE_RULES: raise UserError(f"--by {by}: choose one of {', '.join(ISSUE_RULES)}")
    output = check_new_file(output or run/'label_issues.csv', overwrite)
    _, learn = load_run(run, checkpoint)
    out = training_outputs(learn)
    frame = label_issues_frame(out.items, out.labels, out.probs, list(learn.dls.vocab), out.clean, by)
    write_atomic(output, frame.to_csv(index=False))
    console.print(f"{int(frame.is_label_issue.sum())} of {len(frame)} training images flagged → {output}",
                  highlight=False)
    if s := issue_detection_scores(frame):
        console.print(f"against the clean labels: precision {s['precision'] or 0:.3f} "
                      f"({s['true_positives']}/{s['flagged']}), recall {s['recall'] or 0:.3f} "
                      f"({s['true_positives']}/{s['noisy']} flipped labels)", highlight=False)

@app.command()
@user_errors
def predict(source: Annotated[Path, typer.Argument(help="a run folder (its recipe + models/CHECKPOINT.pth), "
                                                       "an ONNX export (.onnx) or an export .pkl")],
            images: Annotated[list[Path], typer.Argument(help="image files or folders (searched recursively); "
                                                              "with --faces also videos")],
            output: Annotated[Optional[Path], typer.Option('-o', '--output',
                                                           help="CSV to write (default: print CSV)")] = None,
            checkpoint: CheckpointOpt = 'last',
            bs: Annotated[int, typer.Option(min=1, help="images per batch")] = 64,
            overwrite: OverwriteOpt = False,
            trust_pickle: Annotated[bool, typer.Option(
                '--trust-pickle', help="load an export .pkl (a pickle can run code: only files you made)")] = False,
            tta: TTAOpt = TTA.none,
            faces: Annotated[bool, typer.Option('--faces', help="detect and align every face; one row per face "
                                                                "(needs the faces extra)")] = False,
            face_size: FaceSizeOpt = 112, face_margin: FaceMarginOpt = 0.1,
            every: Annotated[Optional[int], typer.Option(min=1, help="videos: classify every N-th frame")] = None,
            fps: Annotated[Optional[float], typer.Option(min=0.001, help="videos: classify this many frames "
                                                                         "per second")] = None,
            annotate: Annotated[Optional[Path], typer.Option(help="videos: write a copy with boxes and classes "
                                                                 "drawn (.mp4, .mkv, .mov, .avi)")] = None):
    ("Class probabilities for images: one row per image (with --faces: per face, and per sampled video frame) with the "
     "predicted class and prob_<class> columns.")
    from ..analysis.faces import annotate_video, no_face_summary, predict_faces
    from ..analysis.predict import classifier, image_files
    from ..data.faces import FaceDetector
    from ..data.video import is_video, video_format
    from ..files import write_atomic
    if not faces and (every or fps or annotate):
        raise UserError("--every, --fps and --annotate work on the faces of videos: add --faces")
    if every and fps: raise UserError("--every and --fps both given: choose one way to sample frames")
    if output is not None: check_new_file(output, overwrite)
    if annotate is not None: check_new_file(annotate, overwrite); video_format(annotate)
    files = image_files(images, videos=faces)
    if annotate is not None and len(videos := [f for f in files if is_video(f)]) != 1:
        raise UserError(f"--annotate {annotate}: give exactly one video to draw on ({len(videos)} given)")
    classify = classifier(source, checkpoint, bs, trust_pickle, _tta(tta))
    if faces:
        preds = predict_faces(classify, files, FaceDetector(), face_size, face_margin, every, fps)
        empty, units, some = no_face_summary(preds)
        if empty == units: raise UserError(f"no face found in {', '.join(map(str, files[:5]))}"
                                           f"{' …' if len(files) > 5 else ''}; without --faces whole images are "
                                           "classified")
        if empty: err_console.print(f"no face in {empty} of {units} images/frames (rows with an empty face): "
                                f"{', '.join(some)}{' …' if empty > len(some) else ''}", highlight=False)
    else: preds = classify(files)
    if annotate is not None:                        # first: a video that fails to decode leaves no CSV either
        (console if output else err_console).print(f"annotated → {annotate_video(videos[0], annotate, preds)}",
                                                   highlight=False)
    if output is None: print(preds.to_csv(index=False), end='')
    else:
        write_atomic(output, preds.to_csv(index=False))
        console.print(f"{len(preds)} rows → {output}", highlight=False)

@app.command()
@user_errors
def evaluate(run: Annotated[Path, typer.Argument(help="a run folder (its data must be where its recipe says)")],
             split: Annotated[Optional[str], typer.Option(help="valid or test (default: the recipe's "
                                                              "data.valid_split)")] = None,
             checkpoint: CheckpointOpt = 'last', tta: TTAOpt = TTA.none,
             output: Annotated[Optional[Path], typer.Option('-o', '--output', help="also write the predictions "
                                                                                  "(CSV)")] = None,
             overwrite: OverwriteOpt = False):
    "Accuracy of a run's model on an evaluation split of its data, optionally with flip test-time augmentation."
    from ..analysis.predict import evaluate_run
    from ..data.core import SPLITS
    from ..files import write_atomic
    if split is not None and split not in SPLITS[1:]: raise UserError(f"--split {split}: choose valid or test")
    if output is not None: check_new_file(output, overwrite)
    preds = evaluate_run(run, split, checkpoint, _tta(tta))
    if output is not None: write_atomic(output, preds.to_csv(index=False))
    console.print(f"accuracy {(preds.pred == preds.label).mean():.4f} on {len(preds)} {preds.split.iloc[0]} images "
                  f"({checkpoint} checkpoint, tta {tta.value}){f' → {output}' if output else ''}", highlight=False)

class ExportFormat(str, Enum):
    onnx = 'onnx'

@app.command()
@user_errors
def export(run: Annotated[Path, typer.Argument(help="a run folder (its recipe + models/CHECKPOINT.pth)")],
           format: Annotated[ExportFormat, typer.Option('--format', help="onnx: an ONNX file for ONNX Runtime and "
                                                                       "other deployment stacks")] = ExportFormat.onnx,
           output: Annotated[Optional[Path], typer.Option('-o', '--output',
                                                          help="file to write (default: RUN/model.onnx)")] = None,
           checkpoint: CheckpointOpt = 'last', overwrite: OverwriteOpt = False):
    ("Export a run's model: ONNX with Normalize and softmax folded in ([0, 1] RGB in, probabilities out), any batch "
     "size, class names in its metadata.")
    from ..analysis.predict import export_run_onnx
    output = check_new_file(output or run/'model.onnx', overwrite)
    console.print(f"ONNX → {export_run_onnx(run, output, checkpoint)}", highlight=False)
