"""Batches for each epoch, determined by (seed, epoch) alone.

Runs that are compared step by step (WD vs its exponential twin) must see identical batches
and augmentations whatever their optimizer or schedule, so each epoch draws from its own
generator seeded from the data seed and the epoch number, never from the global RNG.
"""

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from src.errors import UserError


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def batch_bounds(n: int, batch_size: int, world: int) -> list[tuple[int, int]]:
    """(first, end) of each global batch. Under DDP each of `world` processes takes every
    world-th image of a batch, so a last batch with fewer images than processes is dropped."""
    bounds = [(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    return [(a, b) for a, b in bounds if b - a >= world]


class Batches:
    """What both loaders share: the batch size is global; `rank` of `world` processes gets
    its share of every batch (1 process: all of it)."""

    def __len__(self) -> int:
        return len(batch_bounds(self.num_samples, self.batch_size, self.world))

    def shard(self, start: int):
        """(first, end, step) slices of this process's images, from batch `start` on."""
        bounds = batch_bounds(self.num_samples, self.batch_size, self.world)[start:]
        return [slice(a + self.rank, b, self.world) for a, b in bounds]


class TensorLoader(Batches):
    """A whole split as one uint8 tensor on the training device (the airbench data path):
    a randperm per epoch, pad-and-crop and horizontal flip as batched tensor ops."""

    def __init__(self, images, labels, *, batch_size, mean, std, device, dtype,
                 train=False, crop_padding=0, flip=False, seed=0, rank=0, world=1):
        self.images, self.labels = images.to(device), labels.to(device)
        self.rank, self.world = rank, world
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.crop_padding, self.flip = (crop_padding, flip) if train else (0, False)
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255
        self.dtype = dtype

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    def epoch(self, epoch: int, start: int = 0):
        """The batches of `epoch` from batch `start` on (a resumed epoch)."""
        n, device = self.num_samples, self.images.device
        g = epoch_generator(self.seed, epoch)
        order = torch.randperm(n, generator=g) if self.train else torch.arange(n)
        pad = self.crop_padding
        shifts = torch.randint(2 * pad + 1, (n, 2), generator=g) if pad else None
        flips = torch.rand(n, generator=g) < 0.5 if self.flip else None
        for part in self.shard(start):
            idx = order[part]
            x = self.images[idx.to(device)]
            if pad:
                x = random_crop(x, shifts[idx].to(device), pad)
            if flips is not None:
                x = torch.where(flips[idx].to(device).view(-1, 1, 1, 1), x.flip(-1), x)
            yield ((x.float() - self.mean) / self.std).to(self.dtype), self.labels[idx.to(device)]


    def first(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first n images (all if fewer) as one batch, normalised, not augmented."""
        x = self.images[:n]
        return ((x.float() - self.mean) / self.std).to(self.dtype), self.labels[:n]


def random_crop(x: torch.Tensor, shifts: torch.Tensor, pad: int) -> torch.Tensor:
    """Zero-pad by `pad` and cut the original size at per-image offsets shifts[:, (dy, dx)]."""
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = (shifts[:, 0:1] + torch.arange(h, device=x.device)).view(b, 1, h, 1)
    cols = (shifts[:, 1:2] + torch.arange(w, device=x.device)).view(b, 1, 1, w)
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, channel, rows, cols]


class TorchLoader(Batches):
    """A dataset through torch's DataLoader: ImageFolder (ImageNet), which does not fit in
    memory, or small datasets with dataset.loader=torch.

    The epoch's generator gives the order and one seed per image, which seeds that image's
    augmentation: batches depend on (seed, epoch) alone, not on the number of workers, and a
    resumed epoch goes on with exactly the batches it would have had."""

    def __init__(self, dataset, *, batch_size, device, dtype, train=False, num_workers=0, seed=0,
                 rank=0, world=1):
        self.dataset, self.batch_size, self.train = dataset, batch_size, train
        self.rank, self.world = rank, world
        self.device, self.dtype, self.num_workers, self.seed = device, dtype, num_workers, seed

    @property
    def num_samples(self) -> int:
        return len(self.dataset)

    def epoch(self, epoch: int, start: int = 0):
        n, g = self.num_samples, epoch_generator(self.seed, epoch)
        order = torch.randperm(n, generator=g) if self.train else torch.arange(n)
        seeds = torch.randint(2**62, (n,), generator=g)
        keys = list(zip(order.tolist(), seeds.tolist(), strict=True))
        batches = [keys[part] for part in self.shard(start)]
        loader = DataLoader(_Seeded(self.dataset), batch_sampler=batches,
                            num_workers=self.num_workers, pin_memory=self.device.type == "cuda")
        try:
            for x, y in loader:
                yield x.to(self.device, self.dtype, non_blocking=True), y.to(self.device)
        except UserError as e:  # a worker's carries its traceback as text: keep the message
            last = str(e).rstrip().splitlines()[-1]
            raise UserError(last.removeprefix(f"{UserError.__module__}.UserError: ")) from None


class ArrayImages(Dataset):
    """What torchvision's CIFAR10 does per item: NCHW uint8 row -> PIL image -> transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images = images.permute(0, 2, 3, 1).numpy()  # HWC, as PIL wants
        self.labels, self.transform = labels.tolist(), transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


class _Seeded(Dataset):
    """dataset[index] with torch's RNG seeded for that item only: key = (index, seed)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        index, seed = key
        with torch.random.fork_rng(devices=[]):  # the training process's RNG stays as it was
            # The CPU generator only: torch.manual_seed also seeds CUDA's, at 70 us an image.
            torch.default_generator.manual_seed(seed)
            try:
                return self.dataset[index]
            except OSError as e:  # PIL cannot read the file (ImageFolder knows its path)
                samples = getattr(self.dataset, "samples", None)
                name = samples[index][0] if samples else f"image {index}"
                raise UserError(f"{name} is not a readable image ({e}); replace or remove it"
                                ) from None
