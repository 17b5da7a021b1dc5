"""Multi-process training on fastai's own engine: `DistributedTrainer` (accelerate → DistributedDataParallel) and
`DistributedDL`, made to work on the CPU with the gloo backend as well as on GPUs with NCCL.

Launch N processes with `eac-fastai train RECIPE --nproc N` (torchrun underneath), `torchrun --nproc-per-node N -m
eac_fastai train RECIPE` or `accelerate launch --multi_gpu --num_processes N -m eac_fastai train RECIPE`. Each process
draws `data.bs` images per step (effective batch `data.bs` × N; the learning rate is not rescaled); validation is split
across the processes and gathered, so metrics cover the whole evaluation set; only rank 0 writes the run directory."""
import os, sys, subprocess
from contextlib import contextmanager
import torch
from fastai.callback.progress import ProgressCallback
from fastai.distributed import DistributedDL, DistributedTrainer
from fastai.torch_core import num_distrib, rank_distrib
from ..errors import UserError

__all__ = ['is_distributed', 'is_main_process', 'use_local_gpu', 'ProcessGroupDL', 'ProcessGroupTrainer', 'distributed',
           'launch']

def is_distributed() -> bool: return num_distrib() > 1
def is_main_process() -> bool: return rank_distrib() == 0

def use_local_gpu():
    "In one of several processes on a GPU machine, make this process's GPU (`LOCAL_RANK`) the current device."
    if is_distributed() and torch.cuda.is_available(): torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))

class ProcessGroupDL(DistributedDL):
    "fastai's `DistributedDL`, whose sampler broadcast runs on the process group's own device (CPU tensors for gloo)."
    def _broadcast(self, t, rank):
        t = torch.tensor(t, dtype=torch.long)
        if torch.distributed.get_backend() == 'nccl': t = t.cuda()
        torch.distributed.broadcast(t, rank)
        return t.cpu().tolist()

class ProcessGroupTrainer(DistributedTrainer):
    "fastai's `DistributedTrainer` wrapping the loaders in `ProcessGroupDL`."
    def _wrap_dl(self, dl):
        return dl if isinstance(dl, ProcessGroupDL) else ProcessGroupDL(dl, device=self.learn.model.device)

@contextmanager
def distributed(learn):
    """Inside, `learn` trains as one of the processes torchrun/accelerate started (nothing changes in a single process):
    DistributedDataParallel over NCCL on GPUs (with SyncBatchNorm) or gloo on the CPU (which has no SyncBatchNorm),
    progress bars on rank 0 only; the process group is closed after the fit (what follows runs in each process
    alone)."""
    if not is_distributed():
        yield learn; return
    gpu = learn.dls.device.type == 'cuda'
    trainer = ProcessGroupTrainer(sync_bn=gpu, cpu=not gpu)   # accelerate's `cpu`: gloo instead of looking for GPUs
    learn.add_cb(trainer)
    if not is_main_process(): learn.remove_cb(ProgressCallback)
    try: yield learn
    finally: learn.remove_cb(trainer)
    # after a clean fit only: a failed process must not wait at a barrier
    _close_process_group()

def _close_process_group():
    "Wait for every process, then close the process group: gloo's threads must not outlive it when the processes exit."
    from accelerate.state import AcceleratorState
    if torch.distributed.is_initialized(): torch.distributed.barrier(); torch.distributed.destroy_process_group()
    AcceleratorState._reset_state(reset_partial_state=True)

def launch(nproc:int, args:list[str]) -> int:
    "Run `eac-fastai <args>` in `nproc` processes on this machine through torchrun; its exit code."
    if nproc < 1: raise UserError(f"--nproc {nproc}: give at least 1 process")
    if torch.cuda.is_available() and nproc > torch.cuda.device_count():
        raise UserError(f"--nproc {nproc}: this machine has {torch.cuda.device_count()} GPU(s); "
                        "give at most that many processes")
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc-per-node={nproc}',
           '-m', 'eac_fastai', *args]
    return subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS=os.environ.get(
        'OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1)//nproc))))).returncode
