("fastai's learning-rate range test for a recipe: its four suggestions, the chosen one, `lr_find.json` and "
 "`lr_find.png`.")
import json
from pathlib import Path
import torch
from matplotlib.figure import Figure
from fastai.callback.schedule import SuggestionMethod
from ..errors import UserError
from ..files import write_atomic
from .schema import Recipe

__all__ = ['run_lr_find']

def _suggestions(lrs, losses, num_it:int) -> dict:
    """fastai's four lr_find suggestions on the recorded curve (trimmed as `lr_find` does); None where the curve is too
    short."""
    lrs, losses = torch.tensor(lrs[num_it//10:-5]), torch.tensor(losses[num_it//10:-5])
    if (nan := torch.isnan(losses)).any(): lrs, losses = lrs[:nan.nonzero()[0, 0]], losses[:nan.nonzero()[0, 0]]
    out = dict.fromkeys(('valley', 'slide', 'minimum', 'steep'))
    if len(lrs) < 10: return out                        # too short a curve for any suggestion to mean something
    for f in (SuggestionMethod.Valley, SuggestionMethod.Slide, SuggestionMethod.Minimum, SuggestionMethod.Steep):
        try: out[f.__name__] = float(f(lrs, losses, num_it)[0])
        except (IndexError, ValueError, RuntimeError): out[f.__name__] = None
    return out

def run_lr_find(learn, recipe:Recipe, out:Path|None) -> float:
    """Run fastai's `lr_find`, save `lr_find.json` and `lr_find.png` in `out` (None: nowhere), return the recipe's
    chosen suggestion."""
    cfg = recipe.train.lr_find
    learn.lr_find(cfg.start_lr, cfg.end_lr, cfg.num_it, show_plot=False, suggest_funcs=None)
    lrs, losses = [float(l) for l in learn.recorder.lrs], [float(l) for l in learn.recorder.losses]
    found = _suggestions(lrs, losses, cfg.num_it)
    if out is not None: _save_lr_find(out, found, cfg.suggestion, lrs, losses)
    if found[cfg.suggestion] is None:
        raise UserError(f"lr_find recorded {len(lrs)} steps, too few for the {cfg.suggestion} suggestion "
                        f"(see {out/'lr_find.png' if out else 'its curve'}); "
                        "raise train.lr_find.num_it or set train.lr")
    return found[cfg.suggestion]

def _save_lr_find(out:Path, found:dict, chosen:str, lrs, losses):
    "`lr_find.json` (suggestions, curve) and `lr_find.png` in `out`."
    write_atomic(out/'lr_find.json',
                 json.dumps(dict(suggestions=found, chosen=chosen, lr=found[chosen], lrs=lrs, losses=losses), indent=2))
    fig = Figure(figsize=(6, 4))                        # no pyplot: the caller's matplotlib backend is left alone
    ax = fig.subplots()
    ax.plot(lrs, losses); ax.set_xscale('log'); ax.set_xlabel('learning rate'); ax.set_ylabel('smoothed training loss')
    for (k, v), c in zip(found.items(), ('C1', 'C2', 'C3', 'C4')):
        if v is not None: ax.axvline(v, color=c, ls='--', label=f'{k} {v:.2e}')
    ax.legend(); fig.tight_layout(); fig.savefig(out/'lr_find.png', dpi=100)
