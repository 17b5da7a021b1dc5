"""`eac-fastai report`: one self-contained HTML page (figures embedded as PNG) for a run or a sweep.

A run's page: its metrics, training curves with memorisation, the confusion matrix of the evaluation split, attention
maps of training images and their mirror images (those with a flipped label first), t-SNE of the training features by
given and by clean label, the label issues the model finds (with precision and recall against the clean labels), the
resolved recipe and the environment. A sweep's page: accuracy against each swept value, every run's accuracy and
memorisation curves on one plot, and the table of runs."""
import base64, html, json
from pathlib import Path
import numpy as np, pandas as pd, torch
from .outputs import attention_maps, training_dl, training_outputs
from ..methods.base import normalize_stats
from ..errors import UserError
from .figures import (ablation_figure, attention_figure, confusion_figure, curves_figure, png_bytes,
                      runs_curves_figure, tsne_figure)
from .label_issues import issue_detection_scores, label_issues_frame
from .memorisation import flipped_rows
from ..files import check_new_file, write_atomic
from ..training.sweep import swept_keys
from ..training.runs import load_run

__all__ = ['run_report', 'sweep_report', 'write_report']

_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}img{max-width:100%;display:block;margin:.5em 0}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:.8em}p.note{color:#555;font-size:.9em}"""

def _img(fig, alt:str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png_bytes(fig)).decode()}">'

def _table(df:pd.DataFrame, left=()) -> str:
    head = ''.join(f'<th class="{"l" if c in left else ""}">{html.escape(str(c))}</th>' for c in df.columns)
    fmt = lambda v: f'{v:.4f}' if isinstance(v, float) else html.escape(str(v))
    rows = ''.join('<tr>' + ''.join(f'<td class="{"l" if c in left else ""}">{fmt(v)}</td>'
                                    for c, v in zip(df.columns, r)) + '</tr>'
                   for r in df.itertuples(index=False))
    return f'<table><tr>{head}</tr>{rows}</table>'

def _page(title:str, sections) -> str:
    body = '\n'.join(f'<h2>{html.escape(h)}</h2>\n{content}' for h, content in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n')

def _attention_section(learn, out, n:int) -> str:
    "Attention maps of up to `n` training images, those whose label was flipped first, and of their mirror images."
    rows = flipped_rows(out.items)
    pick = np.concatenate([rows, np.setdiff1d(np.arange(len(out.items)), rows)])[:n]
    x = torch.cat([xb for xb, *_ in training_dl(learn.dls, pick)])
    maps, k = attention_maps(learn.model, x)
    flipped_maps, _ = attention_maps(learn.model, x.flip(-1), k)
    learn.model.eval()
    with torch.no_grad(): pred_flipped = learn.model(x.flip(-1)).argmax(1).cpu()
    mean, std = normalize_stats(learn.dls)
    images = (x*std + mean).clamp(0, 1).cpu()
    vocab = list(learn.dls.vocab)
    titles = [f"given {vocab[out.labels[i]]}" +
              ('' if out.clean is None or out.clean[i] < 0 else f" · clean {vocab[out.clean[i]]}") for i in pick]
    fig = attention_figure(images, maps.cpu(), flipped_maps.cpu(), titles, [f"pred {vocab[c]}" for c in k.tolist()],
                           [f"mirror: pred {vocab[c]}" for c in pred_flipped.tolist()])
    return (_img(fig, 'attention maps') + '<p class="note">Each image and its mirror image, each overlaid with the '
            "attention map of the class predicted for the image (one colour scale per pair): the CAM for a pooling → "
            "Linear head, gradient × feature for the others. Training images whose given label differs from the clean "
            "one come first.</p>")

def _issues_section(out, classes) -> str:
    frame = label_issues_frame(out.items, out.labels, out.probs, classes, out.clean)
    s = issue_detection_scores(frame)
    text = (f"{int(frame.is_label_issue.sum())} of {len(frame)} training images flagged "
            "(confident learning on the final model's predictions)")
    if s: text += (f"; {s['true_positives']} of them really have a flipped label: precision {s['precision'] or 0:.3f}, "
                   f"recall {s['recall'] or 0:.3f} of the {s['noisy']} flipped labels")
    return f'<p>{html.escape(text)}.</p>' + _table(frame.head(15),
                                                   left=('image', 'given_label', 'predicted_label', 'clean_label'))

def _per_class(accuracy:dict|None) -> str:
    "The final model's accuracy per class on the evaluation split, as a table (nothing for runs without it)."
    if not accuracy: return ''
    rows = pd.DataFrame({'class': list(accuracy), 'accuracy': list(accuracy.values())})
    return ('<p class="note">Accuracy per class on the evaluation split (final model); their mean is the mean class '
            'accuracy.</p>' + _table(rows, left=('class',)))

def run_report(run, checkpoint:str='last', n_attention:int=8, tsne_points:int=2000, settings=None) -> str:
    "The HTML report of run directory `run` (its data must be where its recipe says)."
    run = Path(run)
    recipe, learn = load_run(run, checkpoint, settings=settings)
    metrics = json.loads((run/'metrics.json').read_text()) if (run/'metrics.json').is_file() else {}
    history = pd.read_csv(run/'history.csv')
    classes = list(learn.dls.vocab)
    out = training_outputs(learn)
    sections = [('Metrics', _table(pd.DataFrame([{k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}])
                                   .T.reset_index().set_axis(['metric', 'value'], axis=1), left=('metric', 'value'))
                 + _per_class(metrics.get('per_class_accuracy'))),
                ('Training curves', _img(curves_figure(history), 'training curves') +
                 '<p class="note">Accuracy and losses per epoch; memorisation: among the training images whose label '
                 'was flipped, the share the model predicts as the given (noisy) label and as the clean label.</p>')]
    preds = sorted(run.glob('preds_*.csv'))
    if preds:
        p = pd.read_csv(preds[0], dtype=str, keep_default_na=False)
        truth = p.clean_label.where(p.clean_label != '', p.label) if 'clean_label' in p else p.label
        sections.append((f'Confusion matrix ({preds[0].stem.removeprefix("preds_")} split)',
                         _img(confusion_figure(truth, p.pred, classes), 'confusion matrix')))
    sections += [(f'Attention maps ({checkpoint} model)', _attention_section(learn, out, n_attention)),
                 ('Features (t-SNE)',
                  _img(tsne_figure(out.features, out.labels,
                                   None if out.clean is None else np.where(out.clean >= 0, out.clean, -1),
                                   classes, tsne_points), 't-SNE') +
                  '<p class="note">Globally pooled body features of training images, coloured by the label the model '
                  'was given and by the clean label.</p>'),
                 ('Label issues', _issues_section(out, classes)),
                 ('Recipe', f'<pre>{html.escape((run/"recipe.yaml").read_text())}</pre>')]
    if (run/'env.json').is_file():
        sections.append(('Environment', f'<pre>{html.escape((run/"env.json").read_text())}</pre>'))
    return _page(f"{run.name}: {recipe.method} · {recipe.model.arch}", sections)

def sweep_report(folder) -> str:
    "The HTML report of a sweep folder: last-5 accuracy against each swept value, and every run."
    folder = Path(folder)
    try: sweep = pd.read_csv(folder/'sweep.csv')
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UserError(f"{folder/'sweep.csv'}: cannot parse as CSV ({str(e).splitlines()[0]})") from None
    if missing := {'cell', 'run'} - set(sweep.columns):
        raise UserError(f"{folder/'sweep.csv'}: not written by eac-fastai sweep "
                        f"(no column {', '.join(sorted(missing))})")
    if sweep.empty: raise UserError(f"{folder/'sweep.csv'}: no finished run yet")
    keys = swept_keys(sweep)
    label = lambda r: ' '.join([r['cell'], *(f'{k}={r[k]}' for k in keys)])
    histories = {label(r): pd.read_csv(Path(r['run'])/'history.csv') for r in sweep.to_dict('records')
                 if (Path(r['run'])/'history.csv').is_file()}
    curves = [('Accuracy and memorisation', _img(runs_curves_figure(histories), 'curves of the runs') +
               '<p class="note">Every run of the sweep, one colour each: accuracy on the evaluation split per epoch; '
               'among the training images whose label was flipped, the share predicted as the given (noisy) label '
               'and as the clean label.</p>')] if histories else []
    return _page(f"{folder.name}", [('Ablation', _img(ablation_figure(sweep), 'ablation curves')), *curves,
                                    ('Runs', _table(sweep, left=('cell', 'run')))])

def write_report(path, out=None, overwrite:bool=False, checkpoint:str='last', **kwargs) -> Path:
    """Write the report of a run or sweep folder `path` to `out` (default: `path/report.html`); an existing file only
    with `overwrite`. `checkpoint` and `kwargs` go to `run_report` (a sweep's page has no model)."""
    path = Path(path)
    if not path.is_dir(): raise UserError(f"{path}: no such run or sweep folder")
    out = Path(out) if out else path/'report.html'
    check_new_file(out, overwrite)
    if (path/'sweep.csv').is_file(): page = sweep_report(path)
    elif (path/'recipe.yaml').is_file(): page = run_report(path, checkpoint, **kwargs)
    else: raise UserError(f"{path}: neither a run folder (recipe.yaml) nor a sweep folder (sweep.csv)")
    write_atomic(out, page)
    return out
