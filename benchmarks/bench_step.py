"""Training-step benchmark: eac-fastai's EAC step against its CE step and against the official EAC step pattern.

Every figure is measured in this one process on the same model, batch and data, the variants alternating
(A B C D, A B C D, ...), and reported as medians and ratios; nothing is compared across runs or machines.

    python benchmarks/bench_step.py                      # ResNet-18, 112 px, batch 32, 1 thread
    python benchmarks/bench_step.py --size 224 --threads 2 --json bench.json

Variants (one optimizer step each; the data is already in memory, so only the step is timed):
- `fastai_ce`:   eac-fastai's learner, method baseline (CE + the same batch augmentation: noise, erasing)
- `fastai_bare`: the same without augmentation (fastai's overhead over `plain_ce`)
- `fastai_eac`:  eac-fastai's learner, method eac (two forward calls, einsum CAM, torch.flip)
- `fastai_eac1`: the same with `one_forward=True` (one call over both views, BatchNorm per view)
- `official`:    plain PyTorch written as the official EAC step (EAC_SPEC §7): two forwards, the CAM as a broadcast
                 product N×K×C×H×W summed over C, the flip by `grid_sample`, torch Adam; its augmentation runs in the
                 official DataLoader workers, so it is not in this step, while eac-fastai's batch augmentation is
- `plain_ce`:    plain PyTorch CE step with the same model and optimizer (what fastai's own overhead is measured against)
"""
import argparse, json, statistics, time
from pathlib import Path
import torch, torch.nn.functional as F
from torch import nn
import torchvision
from fastai.callback.core import Callback
from fastai.data.core import DataLoaders, TfmdDL
from eac_fastai.learner import eac_learner

class StepTimer(Callback):
    "Wall and CPU time of every training batch, from before_batch to after_batch (callbacks, forward, backward, step)."
    order = -1000
    def before_fit(self): self.times = []
    def before_batch(self):
        if self.training: self.t0 = (time.perf_counter(), time.process_time())
    def after_batch(self):
        if self.training: self.times.append((time.perf_counter() - self.t0[0], time.process_time() - self.t0[1]))
StepTimer.after_batch.order = 1000

def fastai_variant(method, x, y, bs, steps, **kwargs):
    "A function running `steps` training batches of eac-fastai's learner with `method`; returns their (wall, cpu) times."
    items = [(x[i % len(x)], y[i % len(y)]) for i in range(bs*steps)]
    dls = DataLoaders(TfmdDL(items, bs=bs, shuffle=False, after_batch=[]), TfmdDL(items[:bs], bs=bs, after_batch=[]))
    timer = StepTimer()
    learn = eac_learner(dls, 'resnet18', method=method, n_out=7, metrics=[], cbs=[timer], **kwargs)
    def run():
        with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-4)
        return timer.times
    return run

def official_model(n_classes=7):
    "torchvision ResNet-18 cut before its pooling, then AvgPool and a new Linear: the official model with a R18 body."
    r = torchvision.models.resnet18()
    return nn.ModuleDict(dict(features=nn.Sequential(*list(r.children())[:-2]), fc=nn.Linear(512, n_classes)))

def flip_grid(h, w):
    "The official `generate_flip_grid`: normalised coordinates with x negated, for `grid_sample(align_corners=True)`."
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing='ij')
    return torch.stack([-xs, ys], -1)[None]

def official_variant(x, y, bs, steps, lam=5.):
    "The official EAC step pattern in plain PyTorch; returns a function timing `steps` steps."
    model = official_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
    x2 = x.flip(-1)
    def forward(v):
        f = model['features'](v)
        logits = model['fc'](f.mean((2, 3)))
        w = model['fc'].weight.detach()
        cam = (f[:, None] * w.view(1, *w.shape, 1, 1)).sum(2)              # N×K×C×H×W materialised, then summed
        return logits, cam
    def run():
        times = []
        model.train()
        for i in range(steps):
            t = (time.perf_counter(), time.process_time())
            xb, xf, yb = x[:bs], x2[:bs], y[:bs]
            l1, m1 = forward(xb)
            _, m2 = forward(xf)
            grid = flip_grid(*m2.shape[-2:]).expand(len(m2), -1, -1, -1)
            m2 = F.grid_sample(m2, grid, mode='bilinear', padding_mode='border', align_corners=True)
            loss = F.cross_entropy(l1, yb) + lam*F.mse_loss(m1, m2)
            opt.zero_grad(); loss.backward(); opt.step()
            times.append((time.perf_counter() - t[0], time.process_time() - t[1]))
        return times
    return run

def plain_ce_variant(x, y, bs, steps):
    "A plain PyTorch CE step with the same model and optimizer."
    model = official_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
    def run():
        times = []
        model.train()
        for i in range(steps):
            t = (time.perf_counter(), time.process_time())
            loss = F.cross_entropy(model['fc'](model['features'](x[:bs]).mean((2, 3))), y[:bs])
            opt.zero_grad(); loss.backward(); opt.step()
            times.append((time.perf_counter() - t[0], time.process_time() - t[1]))
        return times
    return run

def cam_bytes(bs, k, c, h, w, itemsize=4):
    "Bytes of the CAM intermediates of one view: the official broadcast product vs the einsum/1×1 result."
    return dict(official=bs*k*c*h*w*itemsize, eac_fastai=bs*k*h*w*itemsize)

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--size', type=int, default=112); p.add_argument('--bs', type=int, default=32)
    p.add_argument('--steps', type=int, default=4, help='timed steps per repeat (after one warm-up step)')
    p.add_argument('--repeats', type=int, default=3); p.add_argument('--threads', type=int, default=1)
    p.add_argument('--json', type=Path, default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    x, y = torch.randn(a.bs, 3, a.size, a.size), torch.randint(0, 7, (a.bs,))
    variants = dict(fastai_ce=fastai_variant('baseline', x, y, a.bs, a.steps + 1),
                    fastai_bare=fastai_variant('baseline', x, y, a.bs, a.steps + 1, erase=None, basic=None),
                    fastai_eac=fastai_variant('eac', x, y, a.bs, a.steps + 1),
                    fastai_eac1=fastai_variant('eac', x, y, a.bs, a.steps + 1, one_forward=True),
                    official=official_variant(x, y, a.bs, a.steps + 1), plain_ce=plain_ce_variant(x, y, a.bs, a.steps + 1))
    times = {k: [] for k in variants}
    for _ in range(a.repeats):
        for k, run in variants.items(): times[k] += run()[1:]              # alternating; the first step of each is warm-up
    med = {k: dict(wall=statistics.median(t for t, _ in v), cpu=statistics.median(c for _, c in v)) for k, v in times.items()}
    ratios = {'EAC ÷ CE (eac-fastai)': med['fastai_eac']['wall']/med['fastai_ce']['wall'],
              'EAC eac-fastai ÷ official pattern': med['fastai_eac']['wall']/med['official']['wall'],
              'EAC one forward ÷ two forward calls': med['fastai_eac1']['wall']/med['fastai_eac']['wall'],
              'official EAC ÷ plain CE': med['official']['wall']/med['plain_ce']['wall'],
              'CE step eac-fastai ÷ plain PyTorch (no aug)': med['fastai_bare']['wall']/med['plain_ce']['wall']}
    h = w = (a.size + 31)//32
    mem = cam_bytes(a.bs, 7, 512, h, w)
    print(f"ResNet-18, {a.size} px, batch {a.bs}, {a.threads} thread(s), {a.repeats}×{a.steps} timed steps per variant; "
          f"torch {torch.__version__}")
    print(f"{'variant':<12} {'wall s/step':>12} {'cpu s/step':>11}")
    for k, m in med.items(): print(f"{k:<12} {m['wall']:>12.3f} {m['cpu']:>11.3f}")
    for k, r in ratios.items(): print(f"{k:<36} {r:6.2f}")
    print(f"CAM intermediate per view (computed): official {mem['official']/2**20:.1f} MiB, eac-fastai {mem['eac_fastai']/2**20:.3f} MiB")
    if a.json: a.json.write_text(json.dumps(dict(args=vars(a) | dict(json=str(a.json)), median=med, ratios=ratios, cam_bytes=mem,
                                                   torch=torch.__version__, samples={k: v for k, v in times.items()}), indent=2))

if __name__ == '__main__': main()
