"""RAF-DB-sized epochs of the paper's EAC recipe, timed, and the full recipe's time projected from them.

Trains `recipes/rafdb_eac_r18.yaml` (ResNet-18, 224 px, batch 32, EAC λ 5, the exp schedule) for `--epochs` epochs
through eac-fastai's own recipe path, on demo faces the size of RAF-DB (12,271 training and 3,068 test images of
100×100 px, generated once under settings.ini's data dir; `--scale` shrinks both), no pretrained weights. Prints the
training and evaluation time of each epoch, images/s, and the recipe's 60 epochs projected from the median epoch
after the first (warm-up).

    python benchmarks/bench_rafdb_epoch.py                                     # GPU: bf16, channels_last, cache
    python benchmarks/bench_rafdb_epoch.py --precision fp32 --no-channels-last --no-cache
    python benchmarks/bench_rafdb_epoch.py --device cpu --scale 0.01 --epochs 2 --precision fp32   # a smoke run
"""
import argparse, json, statistics, time
from pathlib import Path
import torch
from fastai.callback.core import Callback
from eac_fastai.training.recipe import load_recipe
from eac_fastai.training.schedules import fit_with_schedule
from eac_fastai.training.build import recipe_dataloaders, recipe_learner

REPO = Path(__file__).resolve().parents[1]
RAFDB = dict(train=12271, test=3068, classes=7)

class PhaseTimer(Callback):
    "Wall time of each epoch's training and validation phases (the device's queue drained at each end)."
    order = 100
    def __init__(self): self.train, self.valid = [], []
    def _now(self):
        if self.dls.device.type == 'cuda': torch.cuda.synchronize(self.dls.device)
        return time.perf_counter()
    def before_train(self): self.t0 = self._now()
    def after_train(self): self.train.append(self._now() - self.t0)
    def before_validate(self): self.t0 = self._now()
    def after_validate(self): self.valid.append(self._now() - self.t0)

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--epochs', type=int, default=3, help='epochs timed (the first is warm-up)')
    p.add_argument('--scale', type=float, default=1.0, help="share of RAF-DB's image counts")
    p.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'])
    p.add_argument('--precision', default='bf16', choices=['fp32', 'bf16', 'fp16'])
    p.add_argument('--channels-last', action=argparse.BooleanOptionalAction, default=True)
    p.add_argument('--cache', action=argparse.BooleanOptionalAction, default=True,
                   help='data.cache: decode each image once')
    p.add_argument('--num-workers', type=int, default=0, help='data.num_workers (without the cache: decoding workers)')
    p.add_argument('--json', type=Path, default=None)
    a = p.parse_args()
    n_train, n_test = (max(1, round(RAFDB[k]*a.scale/RAFDB['classes'])) for k in ('train', 'test'))
    demo = dict(n_train=n_train, n_valid=1, n_test=n_test, size=100, noise=0.3, seed=0)
    recipe = load_recipe(REPO/'recipes'/'rafdb_eac_r18.yaml', [
        'data.csv=null', f'data.demo={json.dumps(demo)}', 'data.classes=null', 'model.weights=null',
        f'data.cache={str(a.cache).lower()}', f'data.num_workers={a.num_workers}', f'train.epochs={a.epochs}',
        f'train.device={a.device}', f'train.precision={a.precision}',
        f'train.channels_last={str(a.channels_last).lower()}'])
    t = time.perf_counter()
    dls = recipe_dataloaders(recipe)
    setup = time.perf_counter() - t
    learn, timer = recipe_learner(recipe, dls), PhaseTimer()
    tr = recipe.train
    with learn.no_bar(), learn.no_logging():
        fit_with_schedule(learn, tr.schedule, tr.epochs, tr.lr, tr.gamma, cbs=[timer])
    epochs = [t + v for t, v in zip(timer.train, timer.valid)]
    steady = epochs[1:] or epochs
    n_tr, n_va = len(dls.train_ds), len(dls.valid_ds)
    res = dict(device=str(dls.device),
               gpu=torch.cuda.get_device_name(dls.device) if dls.device.type == 'cuda' else None,
               precision=a.precision, channels_last=a.channels_last, cache=a.cache, n_train=n_tr, n_test=n_va,
               setup_seconds=setup, train_seconds=timer.train, valid_seconds=timer.valid,
               train_images_per_s=n_tr/statistics.median(timer.train[1:] or timer.train),
               valid_images_per_s=n_va/statistics.median(timer.valid[1:] or timer.valid),
               # 60 epochs, at RAF-DB's size, in minutes
               projected_60_epochs_minutes=60*statistics.median(steady)*RAFDB['train']/n_tr/60)
    print(f"EAC ResNet-18 224 px batch {recipe.data.bs} on {res['gpu'] or res['device']}: {a.precision}, "
          f"channels_last {a.channels_last}, cache {a.cache}; {n_tr} train / {n_va} test images "
          f"(data ready in {setup:.1f} s); torch {torch.__version__}")
    for i, (t, v) in enumerate(zip(timer.train, timer.valid)): print(f"epoch {i}: train {t:7.2f} s  test {v:6.2f} s")
    print(f"training {res['train_images_per_s']:.0f} images/s · test {res['valid_images_per_s']:.0f} images/s · "
          f"the 60-epoch recipe projected at RAF-DB size: {res['projected_60_epochs_minutes']:.1f} min")
    if a.json: a.json.write_text(json.dumps(res, indent=2))

if __name__ == '__main__': main()
