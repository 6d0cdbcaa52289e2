"""Data-parallel training through torchrun: `torchrun --nproc_per_node=N -m src.train ...`.

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


def start(device_setting: str) -> tuple[World, str]:
    """Join the process group torchrun set up; returns the world and the device to use."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(), device_setting
    cuda = device_setting in ("auto", "cuda") and torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
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


def all_max(world: World, tensor: torch.Tensor) -> torch.Tensor:
    if world.distributed:
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor
