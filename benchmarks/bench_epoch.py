"""Epoch benchmark on image files: the fastai data pipeline against training, and a fastai epoch against a plain loop.

Generates demo faces (100×100 PNGs, like RAF-DB's aligned faces) once under `--data`, then in this one process,
alternating the variants, measures:
- `pipeline`:   images/s of eac-fastai's training DataLoader alone (PNG decode, squish-resize to `--size`,
                to tensor, Normalize), no model;
- `cached`:     the same with `data.cache: true` (images decoded and resized once, kept as uint8 in memory; the
                batches are identical), after its one-off decoding, whose time is reported too;
- `fastai_ce`:  a CE epoch of eac-fastai's learner (method baseline, its batch augmentation) over those files;
- `plain_ce`:   the same epoch as a plain PyTorch loop: a torch Dataset with PIL decode + bilinear resize,
                torch DataLoader, the same batch augmentation functions, model and torch Adam.

    python benchmarks/bench_epoch.py                     # 112 px, batch 32, 1 thread
"""
import argparse, json, statistics, time
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F
from PIL import Image
from fastai.callback.core import Callback
from eac_fastai.data.augment import BasicAug, Erasing
from eac_fastai.data.core import label_dataloaders, read_label_csv
from eac_fastai.data.demo import DemoSpec, demo_dataset
from eac_fastai.models.learner import eac_learner

class EpochTimer(Callback):
    "Wall time of the training phase of each epoch (no validation)."
    def before_train(self): self.t0 = time.perf_counter()
    def after_train(self): self.times.append(time.perf_counter() - self.t0)
    def before_fit(self): self.times = getattr(self, 'times', [])

class Faces(torch.utils.data.Dataset):
    "The CSV's training rows as normalised tensors: PIL decode, RGB, bilinear squish-resize, ImageNet Normalize."
    def __init__(self, csv, size, classes):
        df, _ = read_label_csv(csv, classes)
        df = df[df.split == 'train']
        self.paths, self.y = [Path(csv).parent/p for p in df.image], [classes.index(l) for l in df.label]
        self.size, self.mean, self.std = (size, torch.tensor([0.485, 0.456, 0.406])[:, None, None],
                                          torch.tensor([0.229, 0.224, 0.225])[:, None, None])
    def __len__(self): return len(self.paths)
    def __getitem__(self, i):
        im = Image.open(self.paths[i]).convert('RGB').resize((self.size, self.size), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(im, dtype=np.float32)/255).permute(2, 0, 1)
        return (x - self.mean)/self.std, self.y[i]

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--size', type=int, default=112); p.add_argument('--bs', type=int, default=32)
    p.add_argument('--per-class', type=int, default=50, help='training faces per class (7 classes)')
    p.add_argument('--repeats', type=int, default=2); p.add_argument('--threads', type=int, default=1)
    p.add_argument('--data', type=Path, default=Path('data')); p.add_argument('--json', type=Path, default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    csv = demo_dataset(a.data, DemoSpec(n_train=a.per_class, n_valid=2, n_test=1, size=100, noise=0.3, seed=0))
    dls = label_dataloaders(csv, img_size=a.size, bs=a.bs, device='cpu')
    classes = list(dls.vocab)
    timer = EpochTimer()
    learn = eac_learner(dls, 'resnet18', method='baseline', metrics=[], cbs=[timer])
    model, ds = learn.model, Faces(csv, a.size, classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
    erase, basic, stats = Erasing(), BasicAug(), (dls.after_batch.fs[-1].mean.cpu(), dls.after_batch.fs[-1].std.cpu())
    t = time.perf_counter()
    cached_dls = label_dataloaders(csv, img_size=a.size, bs=a.bs, device='cpu', cache=True)
    cache_seconds = time.perf_counter() - t
    def throughput(dl):
        t = time.perf_counter(); n = sum(len(xb) for xb, _ in dl)
        return n/(time.perf_counter() - t)
    pipeline, cached = (lambda: throughput(dls.train)), (lambda: throughput(cached_dls.train))
    def fastai_ce():
        with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-4)
        return timer.times[-1]
    def plain_ce():
        t = time.perf_counter(); model.train()
        for x, y in torch.utils.data.DataLoader(ds, batch_size=a.bs, shuffle=True):
            loss = F.cross_entropy(model(erase(basic(x, stats))), y)
            opt.zero_grad(); loss.backward(); opt.step()
        return time.perf_counter() - t
    runs = dict(pipeline=pipeline, cached=cached, fastai_ce=fastai_ce, plain_ce=plain_ce)
    res = {k: [] for k in runs}
    for _ in range(a.repeats):
        for k, f in runs.items(): res[k].append(f())
    med = {k: statistics.median(v) for k, v in res.items()}
    n = len(dls.train_ds)
    train_ips = n/med['fastai_ce']
    ratios = {'fastai epoch ÷ plain PyTorch epoch': med['fastai_ce']/med['plain_ce'],
              'data pipeline ÷ training throughput': med['pipeline']/train_ips,
              'cached data pipeline ÷ training throughput': med['cached']/train_ips,
              'cached ÷ decoding data pipeline': med['cached']/med['pipeline']}
    print(f"{n} training images of 100 px → {a.size} px, batch {a.bs}, {a.threads} thread(s), {a.repeats} repeats; "
          f"torch {torch.__version__}")
    print(f"data pipeline alone  {med['pipeline']:8.1f} images/s")
    print(f"cached pipeline      {med['cached']:8.1f} images/s "
          f"(decoding {len(cached_dls.train_ds) + len(cached_dls.valid_ds)} images once: {cache_seconds:.2f} s)")
    print(f"fastai CE epoch      {med['fastai_ce']:8.2f} s  ({train_ips:.1f} images/s)")
    print(f"plain PyTorch epoch  {med['plain_ce']:8.2f} s")
    for k, r in ratios.items(): print(f"{k:<44} {r:6.2f}")
    if a.json: a.json.write_text(json.dumps(dict(args={k: str(v) for k, v in vars(a).items()}, median=med,
                                                 ratios=ratios, cache_seconds=cache_seconds, samples=res), indent=2))

if __name__ == '__main__': main()
