"""What `labkit.training.loop.fit` needs to train under `torchrun` with DistributedDataParallel.

A script started by `torchrun --nproc_per_node=K script.py` calls `init_from_env()` once, wraps
its model with `wrap(model)` and gives its training loader a `DistributedSampler`
(`labkit.training.loaders.seeded_loader` does). `fit` then sums the epoch's losses and
accuracies over every process (so that all of them see the same history, schedule and early
stop), sets the sampler's epoch (`set_epoch`), averages gradients once per optimiser step
(`gradient_sync`), counts each validation sample once though the sampler pads the set to a
multiple of the processes (`own_samples`), lets rank 0 alone draw progress bars, print and
write checkpoints, and keeps the unwrapped model's parameter names in them, so a checkpoint
resumes with or without DDP.
Outside `torchrun` every helper is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """True in the process that prints and writes files (rank 0, or the only process)."""
    return rank() == 0


def init_from_env(backend: str | None = None) -> bool:
    """Join the process group `torchrun` describes (RANK, WORLD_SIZE, MASTER_ADDR...).

    Backend: `nccl` where CUDA is available (each process on the GPU of its LOCAL_RANK), else
    `gloo`. Returns False, doing nothing, when WORLD_SIZE is absent or 1.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if dist.is_initialized():
        return True
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend or ("nccl" if cuda else "gloo"))
    return True


def wrap(model: nn.Module) -> nn.Module:
    """`model` in DistributedDataParallel when a process group is active, else unchanged."""
    if not active():
        return model
    device_ids = [model_device_index(model)] if next(model.parameters()).is_cuda else None
    return DistributedDataParallel(model, device_ids=device_ids)


def model_device_index(model: nn.Module) -> int:
    """The CUDA device index of `model`'s parameters."""
    return next(model.parameters()).device.index or 0


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside DistributedDataParallel (or DataParallel), else `model` itself."""
    return model.module if isinstance(model, (DistributedDataParallel, nn.DataParallel)) else model


def sum_over_processes(values: Sequence[float], device: torch.device) -> list[float]:
    """Each value summed over every process (unchanged outside a process group)."""
    if not active():
        return list(values)
    tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def barrier() -> None:
    """Wait for every process (no-op outside a process group)."""
    if active():
        dist.barrier()


def set_epoch(loader: Iterable, epoch: int) -> None:
    """Tell a loader's DistributedSampler the epoch: another shuffle each epoch, the same on
    every process (nothing for any other loader)."""
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)


def own_samples(loader: Iterable) -> int | None:
    """How many of the samples this process reads from `loader` are its own: the first ones.

    A `DistributedSampler` (without `drop_last`) pads a data set whose size does not divide by
    the processes with repeats of its first samples, at the end of the processes' shares: 7
    samples on 2 processes give each 4, and rank 1's last is sample 0 again. Evaluation counts
    only the first `own_samples` of each process, so every sample counts once. None: a loader
    without such a sampler, all its samples count.
    """
    sampler = getattr(loader, "sampler", None)
    if not isinstance(sampler, DistributedSampler) or sampler.drop_last:
        return None
    # the padded list's positions rank, rank + K, ...: those below len(dataset) are real
    return len(range(sampler.rank, len(sampler.dataset), sampler.num_replicas))


def gradient_sync(model: nn.Module, ends_step: bool) -> AbstractContextManager:
    """Where a micro-batch's backward runs: under DDP, gradients are averaged over processes
    once per optimiser step (`ends_step`), not after every micro-batch (`no_sync`)."""
    if ends_step or not isinstance(model, DistributedDataParallel):
        return nullcontext()
    return model.no_sync()
