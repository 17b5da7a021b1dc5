"""The paper's figures for a run, as matplotlib Figures (no pyplot, so the caller's backend is left alone).

`attention_figure`: attention maps of images and of their mirror images side by side (supplementary Fig. 1 and 9);
`confusion_figure`: the row-normalised confusion matrix (Fig. 4); `tsne_figure`: t-SNE of the features coloured by
the given and by the clean label (Fig. 7 and 8); `ablation_figure`: accuracy against swept values (Fig. 2 and 3);
`curves_figure`: accuracy, losses and memorisation per epoch; `runs_curves_figure`: accuracy and memorisation of
several runs on one plot."""
import io
import numpy as np, pandas as pd, torch, torch.nn.functional as F
from matplotlib.figure import Figure
from ..training.sweep import swept_keys

__all__ = ['png_bytes', 'attention_figure', 'confusion_figure', 'tsne_figure', 'curves_figure', 'runs_curves_figure',
           'ablation_figure']

def png_bytes(fig:Figure, dpi:int=100) -> bytes:
    "The figure as PNG bytes."
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=dpi, bbox_inches='tight')
    return buf.getvalue()

def _overlay(ax, image, heat, lo, hi, caption):
    ax.imshow(image)
    ax.imshow((heat - lo)/(hi - lo + 1e-12), cmap='jet', alpha=0.45, vmin=0, vmax=1,
              extent=(-0.5, image.shape[1]-0.5, image.shape[0]-0.5, -0.5))
    ax.set_xticks([]); ax.set_yticks([]); ax.set_xlabel(caption, fontsize=8)

def attention_figure(images:torch.Tensor, maps:torch.Tensor, flipped_maps:torch.Tensor, titles, captions,
                     flipped_captions, per_row:int=4) -> Figure:
    """Each image (N×3×H×W, values in [0, 1]) beside its mirror image, each overlaid with its attention map (upsampled,
    one colour scale per pair), `titles` above the pair and `captions` / `flipped_captions` under the two."""
    n = len(images)
    rows, size = -(-n//per_row), images.shape[-2:]
    up = lambda m: F.interpolate(m[:, None].float(), size=tuple(size), mode='bilinear', align_corners=False)[:, 0]
    maps, flipped_maps = up(maps), up(flipped_maps)
    fig = Figure(figsize=(2.2*2*min(n, per_row), 2.6*rows))
    axes = fig.subplots(rows, 2*min(n, per_row), squeeze=False)
    for ax in axes.flat: ax.axis('off')
    for i in range(n):
        r, c = divmod(i, per_row)
        lo, hi = min(maps[i].min(), flipped_maps[i].min()).item(), max(maps[i].max(), flipped_maps[i].max()).item()
        for j, (img, heat, cap) in enumerate(((images[i], maps[i], captions[i]),
                                              (images[i].flip(-1), flipped_maps[i], flipped_captions[i]))):
            ax = axes[r, 2*c+j]; ax.axis('on')
            _overlay(ax, img.permute(1, 2, 0).numpy(), heat.numpy(), lo, hi, cap)
        axes[r, 2*c].set_title(titles[i], fontsize=8, loc='left')
    fig.tight_layout()
    return fig

def confusion_figure(truth, pred, classes, title:str='') -> Figure:
    "Row-normalised confusion matrix (%) of class names `truth` (rows) against `pred` (columns), in `classes` order."
    classes = list(classes)
    idx = {c: i for i, c in enumerate(classes)}
    m = np.zeros((len(classes), len(classes)))
    np.add.at(m, (pd.Series(truth).map(idx).to_numpy(dtype=int), pd.Series(pred).map(idx).to_numpy(dtype=int)), 1)
    pct = 100*m/np.maximum(m.sum(1, keepdims=True), 1)
    fig = Figure(figsize=(1.0 + 0.62*len(classes), 0.8 + 0.55*len(classes)))
    ax = fig.subplots()
    ax.imshow(pct, cmap='Blues', vmin=0, vmax=100)
    for (i, j), v in np.ndenumerate(pct):
        if m[i, j]: ax.text(j, i, f'{v:.0f}', ha='center', va='center', fontsize=8,
                            color='white' if v > 60 else 'black')
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha='right', fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel('predicted'); ax.set_ylabel('true')
    ax.set_title(title or f'accuracy {100*np.trace(m)/max(m.sum(), 1):.2f}% (rows: % of each true class)', fontsize=9)
    fig.tight_layout()
    return fig

def tsne_figure(features:np.ndarray, given, clean, classes, max_points:int=2000, seed:int=0) -> Figure:
    """t-SNE of `features` (N×C) in two panels with the same points: coloured by the given (noisy) labels and by the
    clean labels (class indices; `clean` None: one panel). Up to `max_points` points, drawn at random (seeded)."""
    from sklearn.manifold import TSNE
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(features), min(len(features), max_points), replace=False))
    xy = TSNE(2, init='pca', random_state=seed,
              perplexity=min(30., (len(keep)-1)/3)).fit_transform(np.asarray(features)[keep])
    panels = ([('given labels', np.asarray(given)[keep])] +
              ([] if clean is None else [('clean labels', np.asarray(clean)[keep])]))
    fig = Figure(figsize=(5.2*len(panels)+1.6, 5))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    cmap = 'tab10' if len(classes) <= 10 else 'tab20'
    for ax, (name, lab) in zip(axes, panels):
        for k, c in enumerate(classes):
            sel = lab == k
            ax.scatter(xy[sel, 0], xy[sel, 1], s=4, color=_colour(cmap, k), label=c)
        ax.set_title(f't-SNE of the features, coloured by the {name}', fontsize=9); ax.set_xticks([]); ax.set_yticks([])
    axes[-1].legend(markerscale=3, fontsize=7, loc='center left', bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig

def _colour(cmap:str, k:int):
    from matplotlib import colormaps
    return colormaps[cmap](k % colormaps[cmap].N)

def curves_figure(history:pd.DataFrame) -> Figure:
    """Per epoch: evaluation accuracy (and mean class accuracy); training and evaluation losses (and the method's
    terms); memorisation, when logged."""
    h, e = history, history.epoch + 1
    panels = [('accuracy', [c for c in ('accuracy', 'mean_class_accuracy') if c in h]),
              ('loss', [c for c in ('train_loss', 'valid_loss', 'train_ce', 'train_consistency', 'train_rank_reg')
                        if c in h])]
    if 'flipped_as_given' in h:
        panels.append(('training images with a flipped label', ['flipped_as_given', 'flipped_as_clean']))
    fig = Figure(figsize=(4.6*len(panels), 3.4))
    for ax, (title, cols) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        for c in cols:
            label = {'flipped_as_given': 'predicted as the given (noisy) label',
                     'flipped_as_clean': 'predicted as the clean label'}.get(c, c)
            ax.plot(e, h[c].astype(float), marker='.', label=label)
        if title != 'loss': ax.set_ylim(0, 1)
        ax.set_xlabel('epoch'); ax.set_title(title, fontsize=9); ax.legend(fontsize=7); ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig

def runs_curves_figure(histories:dict) -> Figure:
    """Runs side by side, one colour each (`histories`: label → history frame): evaluation accuracy, and the share of
    the training images with a flipped label predicted as the given label (solid) and as the clean one (dashed)."""
    fig = Figure(figsize=(9.6, 3.6))
    acc, mem = fig.subplots(1, 2)
    for k, (label, h) in enumerate(histories.items()):
        e, c = h.epoch + 1, _colour('tab10', k)
        acc.plot(e, h.accuracy.astype(float), marker='.', color=c, label=label)
        if 'flipped_as_given' not in h: continue
        mem.plot(e, h.flipped_as_given.astype(float), marker='.', color=c, label=f'{label}: as given (memorised)')
        mem.plot(e, h.flipped_as_clean.astype(float), ls='--', color=c, label=f'{label}: as clean')
    for ax, title in ((acc, 'evaluation accuracy'), (mem, 'training images with a flipped label')):
        ax.set_ylim(0, 1); ax.set_xlabel('epoch'); ax.set_title(title, fontsize=9); ax.grid(alpha=0.3)
        if ax.lines: ax.legend(fontsize=7)
    fig.tight_layout()
    return fig

def _axis(values):
    "Numeric x positions for swept values (numbers, or JSON lists plotted by their position), and their tick labels."
    try: return [float(v) for v in values], None
    except (TypeError, ValueError):
        labels = list(dict.fromkeys(str(v) for v in values))
        return [labels.index(str(v)) for v in values], labels

def ablation_figure(sweep:pd.DataFrame) -> Figure:
    """Last-5 mean accuracy against each swept key of a `sweep.csv` frame, one line per cell
    (and per value of the other keys)."""
    keys = swept_keys(sweep) or ['cell']
    fig = Figure(figsize=(4.6*len(keys), 3.4))
    for ax, key in zip(fig.subplots(1, len(keys), squeeze=False)[0], keys):
        others = [k for k in ('cell', *keys) if k != key]
        for name, g in (sweep.groupby(others, sort=False, dropna=False) if others else [('', sweep)]):
            g = g.groupby(key, sort=False, dropna=False).last5_mean_accuracy.mean().reset_index()
            x, labels = _axis(g[key])
            order = np.argsort(x)
            ax.plot(np.asarray(x)[order], 100*g.last5_mean_accuracy.to_numpy()[order], marker='o',
                    label=' · '.join(map(str, name if isinstance(name, tuple) else (name,))))
            if labels: ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel(key); ax.set_ylabel('last-5 mean accuracy (%)'); ax.grid(alpha=0.3); ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
