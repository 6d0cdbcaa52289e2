"""Where images come from: each source returns uint8 tensors (N, C, H, W) and int64 labels.

digits (scikit-learn's bundled 8x8 digits, offline) is the default; synthetic is for tests;
cifar10/cifar100 read torchvision's on-disk format. ImageNet is too big for memory and goes
through torchvision's ImageFolder instead (see loaders.py).
"""

from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision import datasets

from src.errors import UserError

Split = tuple[torch.Tensor, torch.Tensor]
DIGITS_IMAGES = 1797  # scikit-learn's load_digits()


def digits(test_fraction: float = 0.2, split_seed: int = 0, size: int = 8) -> tuple[Split, Split]:
    """1797 handwritten digits, a fixed stratified split, as 3 x size x size images: their
    own 8x8 pixels, or resized (bilinear) to another size."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1)  # values 0..16
    if size != images.shape[-1]:
        images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    images = (images * (255 / 16)).round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1)
    labels = torch.tensor(bunch.target, dtype=torch.int64)
    try:
        train_idx, test_idx = train_test_split(
            torch.arange(len(labels)).numpy(), test_size=test_fraction,
            random_state=split_seed, stratify=labels.numpy(),
        )
    except ValueError as e:  # a split too small to hold every class
        raise UserError(f"dataset.test_fraction={test_fraction} must leave at least one image "
                        f"of each class in both splits ({e})") from None
    train_idx, test_idx = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
    return (images[train_idx].contiguous(), labels[train_idx]), (
        images[test_idx].contiguous(), labels[test_idx])


def synthetic(
    num_train: int = 256, num_test: int = 128, num_classes: int = 10, size: int = 32, seed: int = 0
) -> tuple[Split, Split]:
    """Class templates plus noise: CIFAR-shaped, learnable, made in milliseconds."""
    g = torch.Generator().manual_seed(seed)
    templates = torch.rand(num_classes, 3, size, size, generator=g) * 255

    def split(n: int) -> Split:
        labels = torch.randint(num_classes, (n,), generator=g)
        noise = torch.randn(n, 3, size, size, generator=g) * 48
        return (templates[labels] + noise).clamp(0, 255).to(torch.uint8), labels

    return split(num_train), split(num_test)


def cifar(name: str, root: str, download: bool) -> tuple[Split, Split]:
    """CIFAR-10/100 from torchvision's layout under root (cifar-10-batches-py, cifar-100-python)."""
    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    splits = []
    for train in (True, False):
        try:
            ds = cls(root=root, train=train, download=download)
        except RuntimeError as e:  # torchvision: "Dataset not found or corrupted"
            raise UserError(
                f"dataset.root={root}: {name} not found or corrupted there ({e}); put the "
                f"python-version archive's folder {cls.base_folder}/ under it, or set "
                f"dataset.download=true on a machine with a network; or run the same "
                f"experiment in miniature on the embedded digits: add dataset=digits budget=mini"
            ) from None
        except OSError as e:  # the download itself failed
            raise UserError(
                f"dataset.root={root}: {name} is not there and downloading it failed ({e}); "
                f"copy {cls.base_folder}/ there by hand, or run the same experiment in "
                f"miniature on the embedded digits: add dataset=digits budget=mini"
            ) from None
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
        splits.append((images, torch.tensor(ds.targets, dtype=torch.int64)))
    return splits[0], splits[1]


def image_folder(root: str, split: str, transform) -> datasets.ImageFolder:
    path = Path(root) / split
    if not path.is_dir():
        raise UserError(
            f"dataset.root={root}: no {split}/ folder there; ImageNet must be laid out as "
            f"{split}/<class>/<image> (torchvision ImageFolder)"
        )
    return datasets.ImageFolder(str(path), transform=transform)
