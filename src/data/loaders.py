"""Batches for each epoch, determined by (seed, epoch) alone.

Runs that are compared step by step (WD vs its exponential twin) must see identical batches
and augmentations whatever their optimizer or schedule, so each epoch draws from its own
generator seeded from the data seed and the epoch number, never from the global RNG.
"""

import math

import torch
from torch.utils.data import DataLoader


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class TensorLoader:
    """A whole split as one uint8 tensor on the training device (the airbench data path):
    a randperm per epoch, pad-and-crop and horizontal flip as batched tensor ops."""

    def __init__(self, images, labels, *, batch_size, mean, std, device, dtype,
                 train=False, crop_padding=0, flip=False, seed=0):
        self.images, self.labels = images.to(device), labels.to(device)
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.crop_padding, self.flip = (crop_padding, flip) if train else (0, False)
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255
        self.dtype = dtype

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)  # keep the last partial batch

    def epoch(self, epoch: int):
        n, device = self.num_samples, self.images.device
        g = epoch_generator(self.seed, epoch)
        order = torch.randperm(n, generator=g) if self.train else torch.arange(n)
        pad = self.crop_padding
        shifts = torch.randint(2 * pad + 1, (n, 2), generator=g) if pad else None
        flips = torch.rand(n, generator=g) < 0.5 if self.flip else None
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.images[idx.to(device)]
            if pad:
                x = random_crop(x, shifts[idx].to(device), pad)
            if flips is not None:
                x = torch.where(flips[idx].to(device).view(-1, 1, 1, 1), x.flip(-1), x)
            yield ((x.float() - self.mean) / self.std).to(self.dtype), self.labels[idx.to(device)]


def random_crop(x: torch.Tensor, shifts: torch.Tensor, pad: int) -> torch.Tensor:
    """Zero-pad by `pad` and cut the original size at per-image offsets shifts[:, (dy, dx)]."""
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = (shifts[:, 0:1] + torch.arange(h, device=x.device)).view(b, 1, h, 1)
    cols = (shifts[:, 1:2] + torch.arange(w, device=x.device)).view(b, 1, 1, w)
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, channel, rows, cols]


class FolderLoader:
    """ImageFolder through torch's DataLoader, for datasets that do not fit in memory.

    Shuffling and the workers' augmentation seeds come from the epoch's generator."""

    def __init__(self, dataset, *, batch_size, device, dtype, train=False, num_workers=0, seed=0):
        self.dataset, self.batch_size, self.train = dataset, batch_size, train
        self.device, self.dtype, self.num_workers, self.seed = device, dtype, num_workers, seed

    @property
    def num_samples(self) -> int:
        return len(self.dataset)

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def epoch(self, epoch: int):
        loader = DataLoader(
            self.dataset, batch_size=self.batch_size, shuffle=self.train,
            num_workers=self.num_workers, generator=epoch_generator(self.seed, epoch),
            pin_memory=self.device.type == "cuda",
        )
        for x, y in loader:
            yield x.to(self.device, self.dtype, non_blocking=True), y.to(self.device)
