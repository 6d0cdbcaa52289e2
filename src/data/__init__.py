"""Datasets and loaders: build_data(cfg) -> Data(train, test, num_classes, input_shape)."""

import math
from dataclasses import dataclass

from torchvision import transforms

from src.data import sources
from src.data.loaders import ArrayImages, TensorLoader, TorchLoader

TENSOR_SOURCES = ("digits", "synthetic", "cifar10", "cifar100")
DATASETS = TENSOR_SOURCES + ("imagenet",)
CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100}  # fixed by the data
CIFAR_TRAIN_IMAGES = 50_000


@dataclass
class Data:
    train: TensorLoader | TorchLoader
    test: TensorLoader | TorchLoader
    num_classes: int
    input_shape: tuple[int, int, int]


def train_images(cfg) -> int | None:
    """How many training images the `dataset` config gives, without loading them (None for
    ImageNet, whose folder decides)."""
    if cfg.name == "digits":  # scikit-learn's split: the test set has ceil(fraction * n)
        n = sources.DIGITS_IMAGES - math.ceil(cfg.test_fraction * sources.DIGITS_IMAGES)
    elif cfg.name == "synthetic":
        n = cfg.num_train
    elif cfg.name in ("cifar10", "cifar100"):
        n = CIFAR_TRAIN_IMAGES
    else:
        return None
    return min(n, cfg.train_subset) if cfg.get("train_subset") else n


def build_data(cfg, *, batch_size: int, seed: int, device, dtype, rank=0, world=1) -> Data:
    """batch_size is global: each of `world` processes gets its share of every batch."""
    shard = dict(rank=rank, world=world)
    if cfg.name == "imagenet":
        return _imagenet(cfg, batch_size=batch_size, seed=seed, device=device, dtype=dtype,
                         **shard)
    if cfg.name == "digits":
        train, test = sources.digits(cfg.test_fraction, cfg.split_seed, cfg.image_size)
    elif cfg.name == "synthetic":
        train, test = sources.synthetic(cfg.num_train, cfg.num_test, cfg.num_classes,
                                        cfg.image_size, cfg.split_seed)
    else:
        train, test = sources.cifar(cfg.name, cfg.root, cfg.download)
    if cfg.get("train_subset"):  # the first n training images, for small budgets
        train = (train[0][: cfg.train_subset], train[1][: cfg.train_subset])
    if cfg.loader == "torch":
        return _torch_path(cfg, train, test, batch_size=batch_size, seed=seed, device=device,
                           dtype=dtype, **shard)
    common = dict(batch_size=batch_size, mean=cfg.mean, std=cfg.std, device=device, dtype=dtype,
                  **shard)
    return Data(
        train=TensorLoader(*train, train=True, crop_padding=cfg.crop_padding, flip=cfg.flip,
                           seed=seed, **common),
        test=TensorLoader(*test, **common),
        num_classes=cfg.num_classes,
        input_shape=tuple(train[0].shape[1:]),
    )


def _torch_path(cfg, train, test, **common) -> Data:
    """The same augmentation the usual torchvision way: a PIL image per item, in workers."""
    size = train[0].shape[-1]
    augment = [transforms.RandomCrop(size, padding=cfg.crop_padding)] if cfg.crop_padding else []
    augment += [transforms.RandomHorizontalFlip()] if cfg.flip else []
    finish = [transforms.ToTensor(), transforms.Normalize(cfg.mean, cfg.std)]
    return Data(
        train=TorchLoader(ArrayImages(*train, transforms.Compose(augment + finish)), train=True,
                          num_workers=cfg.num_workers, **common),
        test=TorchLoader(ArrayImages(*test, transforms.Compose(finish)),
                         num_workers=cfg.num_workers, **common),
        num_classes=cfg.num_classes,
        input_shape=tuple(train[0].shape[1:]),
    )


def _imagenet(cfg, *, batch_size, seed, device, dtype, rank, world) -> Data:
    normalize = transforms.Normalize(cfg.mean, cfg.std)
    train_tf = transforms.Compose([
        transforms.RandomResizedCrop(cfg.image_size), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), normalize,
    ])
    test_tf = transforms.Compose([
        transforms.Resize(int(cfg.image_size * 256 / 224)), transforms.CenterCrop(cfg.image_size),
        transforms.ToTensor(), normalize,
    ])
    common = dict(batch_size=batch_size, device=device, dtype=dtype, num_workers=cfg.num_workers,
                  seed=seed, rank=rank, world=world)
    train = sources.image_folder(cfg.root, "train", train_tf)
    return Data(
        train=TorchLoader(train, train=True, **common),
        test=TorchLoader(sources.image_folder(cfg.root, "val", test_tf), **common),
        num_classes=len(train.classes),
        input_shape=(3, cfg.image_size, cfg.image_size),
    )
