"""Data-parallel training under ``torchrun --nproc-per-node N`` (one process per GPU, or
per CPU slot with the gloo backend); a plain single process otherwise.

Each rank reads its own share of the training runs. Gradients are averaged across ranks with
an all-reduce before every optimiser step (the same update DistributedDataParallel makes;
done at the optimiser so that every architecture's own ``train_step``, GANs' two optimisers
included, works unchanged). Ranks stop an epoch together when any of them runs out of
batches; only rank 0 writes checkpoints, the model and progress.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def from_env() -> Dist:
    """Read torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    return Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init(d: Dist, device: str) -> str:
    """Join the process group; returns the device this rank uses."""
    if not d.active:
        return device
    import torch
    import torch.distributed as dist

    if device.startswith("cuda"):
        torch.cuda.set_device(d.local_rank)
        device = f"cuda:{d.local_rank}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return device


def sync_model(d: Dist, model) -> None:
    """Rank 0's parameters and buffers to every rank."""
    if not d.active:
        return
    import torch.distributed as dist

    for t in list(model.parameters()) + list(model.buffers()):
        dist.broadcast(t.data, 0)


def average_gradients(d: Dist, optimizers) -> None:
    """Make each optimiser's ``step`` first average its parameters' gradients over ranks."""
    if not d.active:
        return
    import torch.distributed as dist

    for opt in optimizers:
        real_step = opt.step
        params = [p for g in opt.param_groups for p in g["params"]]

        def step(*args, _real=real_step, _params=params, **kw):
            for p in _params:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= d.world
            return _real(*args, **kw)
        opt.step = step


def all_have(d: Dist, have: bool) -> bool:
    """True when every rank still has a batch (so all take the same number of steps)."""
    if not d.active:
        return have
    import torch
    import torch.distributed as dist

    t = torch.tensor([1 if have else 0])
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def barrier(d: Dist) -> None:
    if d.active:
        import torch.distributed as dist

        dist.barrier()


def finish(d: Dist) -> None:
    if d.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
