"""Data-parallel training through torchrun: `torchrun --nproc_per_node=N -m src.train ...`, or
a submitit job of N tasks (hydra/launcher=slurm_8gpus).

torchrun starts N processes with RANK / WORLD_SIZE / LOCAL_RANK set. Each takes its share of
every global batch (trainer.batch_size is the global batch), DistributedDataParallel averages
the gradients, and only rank 0 writes records, checkpoints and W&B. BN statistics stay per
process, as in PyTorch's default DDP setting; trainer.sync_batchnorm=true syncs them.
Without torchrun, World() is the single process and every helper here is the identity.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def _from_submitit() -> None:
    """A submitit job of several tasks (SLURM's tasks_per_node, submitit_local's too) sets no
    torchrun variables: submitit's own helper exports them (ranks, master address and port)."""
    if "WORLD_SIZE" in os.environ or "SUBMITIT_EXECUTOR" not in os.environ:
        return
    from submitit import JobEnvironment
    from submitit.helpers import TorchDistributedEnvironment

    if JobEnvironment().num_tasks > 1:
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def start(device_setting: str) -> tuple[World, str]:
    """Join the process group torchrun (or submitit) set up; returns the world and the device
    to use."""
    _from_submitit()
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(), device_setting
    cuda = device_setting in ("auto", "cuda") and torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        # SLURM may show each task its own GPU only (gpus_per_task): then it is cuda:0
        local = int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count()
        torch.cuda.set_device(local)
        return World(dist.get_rank(), size), f"cuda:{local}"
    return World(dist.get_rank(), size), "cpu"


def stop(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def broadcast(world: World, value):
    """Rank 0's value on every rank (any picklable object)."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_sum(world: World, tensor: torch.Tensor) -> torch.Tensor:
    if world.distributed:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
    return tensor


def all_gather(world: World, tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's tensor, stacked along a new first dimension in rank order."""
    if not world.distributed:
        return tensor.unsqueeze(0)
    parts = [torch.empty_like(tensor) for _ in range(world.size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.stack(parts)


def all_max(world: World, tensor: torch.Tensor) -> torch.Tensor:
    if world.distributed:
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor
