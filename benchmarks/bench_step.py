"""Training-step benchmark: eac-fastai's EAC step against its CE step and against the official EAC step pattern.

Every figure is measured in this one process on the same model, batch and data, the variants alternating
(A B C D, A B C D, ...), and reported as medians and ratios; nothing is compared across runs or machines.
After the timing, each variant's peak memory during its steps is measured above what it held before them
(CUDA: `max_memory_allocated`; CPU: the allocations and frees the torch profiler records, in time order).

    python benchmarks/bench_step.py                      # ResNet-18, 112 px, batch 32, 1 thread, CPU
    python benchmarks/bench_step.py --size 224 --threads 2 --json bench.json
    python benchmarks/bench_step.py --device cuda --size 224 --bs 64 --steps 20   # adds the mixed-precision variants
    python benchmarks/bench_step.py --compile inductor                            # adds torch.compile's variant

Variants (one optimizer step each; the data is already in memory, so only the step is timed):
- `fastai_ce`:   eac-fastai's learner, method baseline (CE + the same batch augmentation: noise, erasing)
- `fastai_bare`: the same without augmentation (fastai's overhead over `plain_ce`)
- `fastai_eac`:  eac-fastai's learner, method eac (two forward calls, einsum CAM, torch.flip)
- `fastai_eac_bare`: the same without augmentation (like-for-like with `official`, whose augmentation is not in
                 its step)
- `fastai_eac1`: `fastai_eac` with `one_forward=True` (one call over both views, BatchNorm per view)
- `fastai_eac_cl`: `fastai_eac` in channels_last memory format (fastai's `ChannelsLast`; `train.channels_last`)
- `fastai_eac_bf16`, `fastai_eac_fp16`: `fastai_eac` in mixed precision (fastai's `MixedPrecision`), CUDA only
- `fastai_eac_compiled`: `fastai_eac` with `--compile BACKEND` (`train.compile`: torch.compile of the model); its
                 compile time is its first step's wall time less its median step
- `official`:    plain PyTorch written as the official EAC step (EAC_SPEC §7): two forwards, the CAM as a broadcast
                 product N×K×C×H×W summed over C, the flip by `grid_sample`, torch Adam; its augmentation runs in the
                 official DataLoader workers, so it is not in this step, while eac-fastai's batch augmentation is
- `plain_ce`:    plain PyTorch CE step with the same model and optimizer (what fastai's own overhead is measured
                 against)
"""
import argparse, json, statistics, time
from pathlib import Path
import torch, torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile
import torchvision
from fastai.callback.core import Callback
from fastai.data.core import DataLoaders, TfmdDL
from eac_fastai.models.learner import eac_learner
from eac_fastai.training.build import compile_model

def clock(device) -> tuple[float, float]:
    "(wall, CPU) seconds now, after waiting for `device`'s queued work."
    if device.type == 'cuda': torch.cuda.synchronize(device)
    return time.perf_counter(), time.process_time()

def since(t0, device) -> tuple[float, float]:
    t = clock(device); return t[0] - t0[0], t[1] - t0[1]

class StepTimer(Callback):
    "Wall and CPU time of every training batch, from before_batch to after_batch (callbacks, forward, backward, step)."
    order = -1000
    def before_fit(self): self.times = []
    def before_batch(self):
        if self.training: self.t0 = clock(self.dls.device)
    def after_batch(self):
        if self.training: self.times.append(since(self.t0, self.dls.device))
StepTimer.after_batch.order = 1000

def peak_memory(run, device) -> int:
    "Peak bytes allocated while `run()` runs, above what was allocated when it started."
    if device.type == 'cuda':
        torch.cuda.synchronize(device); torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        run(); torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof: run()
    # allocations are booked on the op that makes them, frees as [memory] events
    now = top = 0
    for e in sorted(prof.events(), key=lambda e: e.time_range.start):
        now += e.self_cpu_memory_usage; top = max(top, now)
    return top

def fastai_variant(method, x, y, bs, steps, channels_last=False, precision='fp32', compile=False, **kwargs):
    """A function running `steps` training batches of eac-fastai's learner with `method`; returns their (wall, cpu)
    times."""
    items = [(x[i % len(x)], y[i % len(y)]) for i in range(bs*steps)]
    dls = DataLoaders(TfmdDL(items, bs=bs, shuffle=False, after_batch=[], num_workers=0),
                      TfmdDL(items[:bs], bs=bs, after_batch=[], num_workers=0), device=x.device)
    timer = StepTimer()
    # fit moves the model to dls.device
    learn = eac_learner(dls, 'resnet18', method=method, n_out=7, metrics=[], cbs=[timer], **kwargs)
    if channels_last: learn.to_channelslast(use_amp=False)
    if precision != 'fp32': learn.to_fp16() if precision == 'fp16' else learn.to_bf16()
    compile_model(learn, compile)
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
    model = official_model().to(x.device)
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
            t = clock(x.device)
            xb, xf, yb = x[:bs], x2[:bs], y[:bs]
            l1, m1 = forward(xb)
            _, m2 = forward(xf)
            grid = flip_grid(*m2.shape[-2:]).to(x.device).expand(len(m2), -1, -1, -1)
            m2 = F.grid_sample(m2, grid, mode='bilinear', padding_mode='border', align_corners=True)
            loss = F.cross_entropy(l1, yb) + lam*F.mse_loss(m1, m2)
            opt.zero_grad(); loss.backward(); opt.step()
            times.append(since(t, x.device))
        return times
    return run

def plain_ce_variant(x, y, bs, steps):
    "A plain PyTorch CE step with the same model and optimizer."
    model = official_model().to(x.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
    def run():
        times = []
        model.train()
        for i in range(steps):
            t = clock(x.device)
            loss = F.cross_entropy(model['fc'](model['features'](x[:bs]).mean((2, 3))), y[:bs])
            opt.zero_grad(); loss.backward(); opt.step()
            times.append(since(t, x.device))
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
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--json', type=Path, default=None)
    p.add_argument('--compile', choices=['inductor', 'aot_eager', 'cudagraphs'], default=None,
                   help='add fastai_eac_compiled: the EAC learner under torch.compile with this backend')
    a = p.parse_args()
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    device = torch.device(a.device)
    x, y = torch.randn(a.bs, 3, a.size, a.size, device=device), torch.randint(0, 7, (a.bs,), device=device)
    n = a.steps + 1
    variants = dict(fastai_ce=fastai_variant('baseline', x, y, a.bs, n),
                    fastai_bare=fastai_variant('baseline', x, y, a.bs, n, erase=None, basic=None),
                    fastai_eac=fastai_variant('eac', x, y, a.bs, n),
                    fastai_eac_bare=fastai_variant('eac', x, y, a.bs, n, erase=None, basic=None),
                    fastai_eac1=fastai_variant('eac', x, y, a.bs, n, one_forward=True),
                    fastai_eac_cl=fastai_variant('eac', x, y, a.bs, n, channels_last=True),
                    official=official_variant(x, y, a.bs, n), plain_ce=plain_ce_variant(x, y, a.bs, n))
    if device.type == 'cuda':
        variants.update(fastai_eac_bf16=fastai_variant('eac', x, y, a.bs, n, precision='bf16'),
                        fastai_eac_fp16=fastai_variant('eac', x, y, a.bs, n, precision='fp16'))
    if a.compile: variants['fastai_eac_compiled'] = fastai_variant('eac', x, y, a.bs, n, compile=a.compile)
    # per repeat, the (wall, cpu) of each timed step
    reps, first = {k: [] for k in variants}, {}
    for _ in range(a.repeats):
        # alternating; the first step of each is warm-up (and, compiled, the compilation)
        for k, run in variants.items():
            steps = run(); reps[k].append(steps[1:]); first.setdefault(k, steps[0][0])
    times = {k: [s for r in v for s in r] for k, v in reps.items()}
    med = {k: dict(wall=statistics.median(t for t, _ in v), cpu=statistics.median(c for _, c in v))
           for k, v in times.items()}
    peak = {k: peak_memory(run, device) for k, run in variants.items()}
    pairs = {'EAC ÷ CE (eac-fastai)': ('fastai_eac', 'fastai_ce'),
             'EAC eac-fastai ÷ official pattern': ('fastai_eac', 'official'),
             'EAC eac-fastai ÷ official pattern (no aug)': ('fastai_eac_bare', 'official'),
             'EAC one forward ÷ two forward calls': ('fastai_eac1', 'fastai_eac'),
             'EAC channels_last ÷ contiguous': ('fastai_eac_cl', 'fastai_eac'),
             **{f'EAC {pr} ÷ fp32': (f'fastai_eac_{pr}', 'fastai_eac')
                for pr in ('bf16', 'fp16') if f'fastai_eac_{pr}' in variants},
             **({'EAC compiled ÷ eager': ('fastai_eac_compiled', 'fastai_eac')} if a.compile else {}),
             'official EAC ÷ plain CE': ('official', 'plain_ce'),
             'CE step eac-fastai ÷ plain PyTorch (no aug)': ('fastai_bare', 'plain_ce')}
    wall = lambda steps: statistics.median(t for t, _ in steps)
    ratios = {k: med[n]['wall']/med[d]['wall'] for k, (n, d) in pairs.items()}
    # the same ratio, repeat by repeat
    spread = {k: [wall(rn)/wall(rd) for rn, rd in zip(reps[n], reps[d])] for k, (n, d) in pairs.items()}
    ratios['peak memory: EAC eac-fastai ÷ official pattern'] = peak['fastai_eac']/peak['official']
    h = w = (a.size + 31)//32
    mem = cam_bytes(a.bs, 7, 512, h, w)
    print(f"ResNet-18, {a.size} px, batch {a.bs}, {a.device}, {a.threads} thread(s), "
          f"{a.repeats}×{a.steps} timed steps per variant; torch {torch.__version__}")
    print(f"{'variant':<20} {'wall s/step':>12} {'cpu s/step':>11} {'peak MiB':>9}")
    for k, m in med.items(): print(f"{k:<20} {m['wall']:>12.4f} {m['cpu']:>11.3f} {peak[k]/2**20:>9.0f}")
    print(f"{'ratio (of medians)':<48} {'all':>6}   per repeat")
    for k, r in ratios.items(): print(f"{k:<48} {r:6.2f}   {' '.join(f'{v:.2f}' for v in spread.get(k, []))}")
    compile_s = first['fastai_eac_compiled'] - med['fastai_eac_compiled']['wall'] if a.compile else None
    if a.compile: print(f"compile time ({a.compile}, first step less the median step): {compile_s:.1f} s")
    print(f"CAM intermediate per view (computed): official {mem['official']/2**20:.1f} MiB, "
          f"eac-fastai {mem['eac_fastai']/2**20:.3f} MiB")
    if a.json: a.json.write_text(json.dumps(dict(args=vars(a) | dict(json=str(a.json)), median=med, peak_bytes=peak,
                                                 ratios=ratios, ratios_per_repeat=spread,
                                                 compile_seconds=compile_s,
                                                 cam_bytes=mem, torch=torch.__version__, samples=times), indent=2))

if __name__ == '__main__': main()
