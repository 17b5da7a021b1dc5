"""The performance suite in one command: every speed and memory benchmark of README "Performance" on this machine.

Runs each benchmark script in its own process, one after another (the machine otherwise idle), prints their tables
and keeps in a new folder under `--out` each one's JSON, printout (NAME.txt) and log lines (NAME.stderr.txt):
- CPU, always: `bench_step.py` (EAC ÷ CE, ÷ the official step pattern, one forward, channels_last, peak memory) and
  `bench_epoch.py` (fastai ÷ plain PyTorch epoch, data pipeline and cache ÷ training throughput), 112 px, 1 thread;
- CUDA, when there is a GPU: `bench_step.py --device cuda` at 224 px, batch 64 (adds bf16 and fp16), and
  `bench_rafdb_epoch.py`: RAF-DB-sized EAC epochs at 224 px in bf16 and in fp32, with the 60-epoch projection.

    python benchmarks/suite.py                 # 15 to 20 minutes on a 2-core CPU
    python benchmarks/suite.py --skip-cpu      # GPU part only
"""
import argparse, os, subprocess, sys, time
from datetime import datetime
from pathlib import Path
import torch

HERE = Path(__file__).resolve().parent

def benchmarks(cpu:bool, cuda:bool) -> dict[str, list[str]]:
    "Name → script and arguments of each benchmark to run."
    jobs = {}
    if cpu: jobs.update(step_cpu=['bench_step.py'], epoch_cpu=['bench_epoch.py'])
    if cuda: jobs.update(step_cuda=['bench_step.py', '--device', 'cuda', '--size', '224', '--bs', '64',
                                    '--steps', '10'],
                         rafdb_bf16=['bench_rafdb_epoch.py', '--precision', 'bf16'],
                         rafdb_fp32=['bench_rafdb_epoch.py', '--precision', 'fp32', '--no-channels-last'])
    return jobs

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', type=Path, default=Path('runs'), help='parent of the new results folder')
    p.add_argument('--skip-cpu', action='store_true', help='only the GPU benchmarks')
    a = p.parse_args()
    cuda = torch.cuda.is_available()
    jobs = benchmarks(not a.skip_cpu, cuda)
    if not jobs: sys.exit("nothing to run: --skip-cpu and no CUDA device")
    folder = a.out/f"bench-suite-{datetime.now():%Y%m%d-%H%M%S}"
    folder.mkdir(parents=True)
    print(f"{len(jobs)} benchmarks "
          f"({'CPU and CUDA' if cuda and not a.skip_cpu else 'CUDA' if cuda else 'CPU only: no CUDA device'}) "
          f"→ {folder}", flush=True)
    failed = []
    for name, (script, *args) in jobs.items():
        t0 = time.time()
        print(f"\n## {name}: {script} {' '.join(args)}", flush=True)
        r = subprocess.run([sys.executable, str(HERE/script), *args, '--json', str(folder/f'{name}.json')],
                           capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS='ignore'))
        # the table; the torch profiler's log lines go to stderr
        (folder/f'{name}.txt').write_text(r.stdout)
        if r.stderr: (folder/f'{name}.stderr.txt').write_text(r.stderr)
        print(r.stdout.rstrip() or r.stderr[-2000:], flush=True)
        if r.returncode:
            failed.append(name); print(f"FAILED (exit {r.returncode}): see {folder/(name + '.stderr.txt')}")
        print(f"({(time.time() - t0)/60:.1f} min)", flush=True)
    if failed: sys.exit(f"failed: {', '.join(failed)}")

if __name__ == '__main__': main()
