"""Datasets and loaders, including the real CIFAR and ImageFolder readers on files we write."""

import pickle

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from src.config.checks import check_relations, check_values
from src.config.resolvers import compose_config
from src.data import build_data, sources
from src.data.loaders import random_crop
from src.errors import UserError
from tests.helpers.data import write_cifar10

CPU = torch.device("cpu")


def load(cfg, seed=0, batch_size=64, dtype=torch.float32):
    return build_data(cfg.dataset, batch_size=batch_size, seed=seed, device=CPU, dtype=dtype)


def test_digits_split_is_fixed_at_their_own_8x8_pixels():
    (x_train, y_train), (x_test, y_test) = sources.digits()
    assert x_train.shape == (1437, 3, 8, 8) and x_test.shape == (360, 3, 8, 8)
    assert x_train.dtype == torch.uint8 and x_train.max() == 255
    assert set(y_test.tolist()) == set(range(10))
    (again, _), _ = sources.digits()
    assert torch.equal(x_train, again)
    # scikit-learn's pixels (0..16), scaled to 0..255 and nothing else, in 3 equal channels
    from collections import Counter

    from sklearn.datasets import load_digits
    expected = (torch.from_numpy(load_digits().images) * (255 / 16)).round().to(torch.uint8)
    ours = torch.cat([x_train, x_test])
    assert torch.equal(ours[:, 0], ours[:, 2])
    assert Counter(bytes(i.numpy()) for i in ours[:, 0]) == Counter(
        bytes(i.numpy()) for i in expected)
    (big, y_big), _ = sources.digits(size=32)
    assert big.shape == (1437, 3, 32, 32) and torch.equal(y_big, y_train)


def test_digits_run_through_the_cifar_nets_at_8x8():
    """PreResNet's stages at 8, 4 and 2 pixels; the default config builds that way."""
    from src.models import build_model

    cfg = compose_config(["logger=none"])
    data = build_data(cfg.dataset, batch_size=32, seed=0, device=CPU, dtype=torch.float32)
    assert data.input_shape == (3, 8, 8) and cfg.model.name == "preresnet32"
    model = build_model(cfg.model, data.num_classes)
    sizes = []
    for stage in model.stages:
        stage.register_forward_hook(lambda m, i, out: sizes.append(out.shape[-1]))
    x, _ = next(data.train.epoch(0))
    assert model(x).shape == (32, 10) and sizes == [8, 4, 2]


def batches(loader, epoch):
    return [(x.clone(), y.clone()) for x, y in loader.epoch(epoch)]


def test_same_seed_same_batches_whatever_else(tiny_cfg):
    a = batches(load(tiny_cfg()).train, 0)
    b = batches(load(tiny_cfg("schedule=exp", "optimizer.lr=0.05")).train, 0)
    torch.manual_seed(123)  # the global RNG plays no part
    c = batches(load(tiny_cfg()).train, 0)
    for (xa, ya), (xb, yb), (xc, yc) in zip(a, b, c, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert torch.equal(xa, xc) and torch.equal(ya, yc)
    other_epoch = batches(load(tiny_cfg()).train, 1)
    other_seed = batches(load(tiny_cfg(), seed=1).train, 0)
    assert not torch.equal(a[0][0], other_epoch[0][0])
    assert not torch.equal(a[0][0], other_seed[0][0])


def batches_from(loader, epoch, start):
    return [(x.clone(), y.clone()) for x, y in loader.epoch(epoch, start=start)]


def test_resumed_epoch_is_the_rest_of_the_epoch(tiny_cfg):
    loader = load(tiny_cfg(), batch_size=100).train  # with crop and flip
    whole, rest = batches(loader, 2), batches_from(loader, 2, start=1)
    assert len(rest) == 2
    for (xa, ya), (xb, yb) in zip(whole[1:], rest, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_epoch_covers_every_sample_once_with_last_partial_batch(tiny_cfg):
    loader = load(tiny_cfg(), batch_size=100).train  # 256 images: 100, 100, 56
    sizes = [len(y) for _, y in loader.epoch(0)]
    assert sizes == [100, 100, 56] and len(loader) == 3
    labels = torch.cat([y for _, y in loader.epoch(0)])
    assert torch.equal(labels.sort().values, loader.labels.sort().values)


def test_random_crop_matches_slicing_the_padded_image():
    x = torch.randint(0, 255, (5, 3, 8, 8), dtype=torch.uint8)
    shifts = torch.tensor([[0, 0], [4, 4], [8, 8], [0, 8], [3, 1]])
    out = random_crop(x, shifts, 4)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i, (dy, dx) in enumerate(shifts.tolist()):
        assert torch.equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 8])


def test_augmentation_only_in_training_and_normalised(tiny_cfg):
    data = load(tiny_cfg("dataset.crop_padding=0", "dataset.flip=false"), batch_size=256)
    x, _ = next(data.train.epoch(0))
    raw = data.train.images[torch.randperm(256, generator=torch.Generator().manual_seed(0))]
    expected = (raw.float() / 255 - 0.5) / 0.25
    assert torch.allclose(x, expected, atol=1e-6)
    test_x, test_y = next(data.test.epoch(5))
    assert torch.equal(test_y, data.test.labels[:256])  # the test split is never shuffled


def test_cifar10_reader_on_files_in_the_real_format(tmp_path, monkeypatch, tiny_cfg):
    folder = write_cifar10(tmp_path)
    # torchvision checks the md5 of the real 170 MB archive's files; ours are stand-ins.
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    data = load(tiny_cfg("dataset=cifar10", f"dataset.root={tmp_path}", "dataset.download=false"))
    assert data.train.num_samples == 20 and data.test.num_samples == 10
    with open(folder / "test_batch", "rb") as f:
        first = pickle.load(f)["data"][0].reshape(3, 32, 32)
    assert torch.equal(data.test.images[0], torch.from_numpy(first))
    assert next(data.train.epoch(0))[0].shape == (20, 3, 32, 32)


def test_missing_cifar_is_one_clear_error(tmp_path, tiny_cfg):
    with pytest.raises(UserError, match="cifar10 not found"):
        load(tiny_cfg("dataset=cifar10", f"dataset.root={tmp_path}", "dataset.download=false"))


def test_imagenet_folder_reader(tmp_path, tiny_cfg):
    for split in ("train", "val"):
        for label in ("n01", "n02"):
            (tmp_path / split / label).mkdir(parents=True)
            for i in range(3):
                pixels = np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / split / label / f"{i}.png")
    cfg = tiny_cfg("dataset=imagenet", f"dataset.root={tmp_path}", "dataset.image_size=32",
                   "dataset.num_workers=0")
    data = load(cfg, batch_size=4)
    assert data.num_classes == 2 and data.train.num_samples == 6 and len(data.train) == 2
    x, y = next(data.train.epoch(0))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    # Images and their augmentation depend on (seed, epoch) alone, not on the workers.
    workers = load(tiny_cfg("dataset=imagenet", f"dataset.root={tmp_path}",
                            "dataset.image_size=32", "dataset.num_workers=2"), batch_size=4)
    torch.manual_seed(1)  # the global RNG plays no part
    for a, b in zip(data.train.epoch(3), workers.train.epoch(3), strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(next(data.train.epoch(3))[0], next(data.train.epoch(4))[0])
    # A resumed epoch goes on with the batches the whole epoch would have had.
    tail = batches_from(data.train, 3, start=1)
    assert len(tail) == 1 and torch.equal(tail[0][0], batches(data.train, 3)[1][0])
    with pytest.raises(UserError, match="no train/ folder"):
        load(tiny_cfg("dataset=imagenet", f"dataset.root={tmp_path / 'none'}"))


def test_fp64_inputs(tiny_cfg):
    x, _ = next(load(tiny_cfg(), dtype=torch.float64).train.epoch(0))
    assert x.dtype == torch.float64


def test_config_mean_std_match_digits():
    cfg = OmegaConf.load("conf/dataset/digits.yaml")
    (x, _), _ = sources.digits(cfg.test_fraction, cfg.split_seed, cfg.image_size)
    x = x.double().div(255)
    # the config holds the measured values rounded to 4 decimals, the same in every channel
    assert cfg.mean == [round(x.mean().item(), 4)] * 3
    assert cfg.std == [round(x.std().item(), 4)] * 3


@pytest.mark.parametrize("override, words", [
    ("dataset.image_size=0", "dataset.image_size=0 is not allowed: use an integer >= 1"),
    ("dataset.image_size=-8", "dataset.image_size=-8 is not allowed: use an integer >= 1"),
    ("dataset.image_size=8.5", "dataset.image_size=8.5 is not allowed: use an integer >= 1"),
    ("dataset.test_fraction=1.5", "dataset.test_fraction=1.5 is not allowed: use a number in "
                                  "(0, 1)"),
    ("dataset.test_fraction=0", "dataset.test_fraction=0 is not allowed"),
    ("dataset.train_subset=0", "dataset.train_subset=0 is not allowed: use null (all) or an "
                               "integer >= 1"),
    ("dataset.train_subset=-5", "dataset.train_subset=-5 is not allowed"),
    ("dataset.split_seed=-1", "dataset.split_seed=-1 is not allowed: use an integer >= 0"),
    ("dataset.crop_padding=-1", "dataset.crop_padding=-1 is not allowed: use an integer >= 0"),
    ("dataset.flip=1", "dataset.flip=1 is not allowed: use true or false"),
    ("dataset.loader=gpu", "dataset.loader='gpu' is not allowed: use one of device, torch"),
    ("dataset.num_workers=-2", "dataset.num_workers=-2 is not allowed"),
    ("dataset.std=[0.3,0,0.3]", "dataset.std=[0.3, 0, 0.3] is not allowed: use a list of 3 "
                                "numbers > 0"),
    ("dataset.mean=[0.3]", "dataset.mean=[0.3] is not allowed: use a list of 3 numbers"),
    ("dataset.num_classes=5", "dataset.num_classes=5 is not allowed: digits has 10 classes"),
    ("dataset=synthetic dataset.num_train=0", "dataset.num_train=0 is not allowed"),
    ("dataset=cifar10 dataset.download=maybe", "dataset.download='maybe' is not allowed"),
])
def test_bad_dataset_values_are_one_clear_error(override, words):
    cfg = compose_config(["logger=none", *override.split()])
    with pytest.raises(UserError) as error:
        check_values(cfg)
        check_relations(cfg)
    assert words in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("dataset", ["digits", "synthetic", "cifar10", "cifar100", "imagenet"])
def test_every_dataset_config_passes_its_checks(dataset):
    cfg = compose_config([f"dataset={dataset}"])
    check_values(cfg)
    check_relations(cfg)


def test_a_split_without_every_class_is_one_clear_error():
    with pytest.raises(UserError, match="dataset.test_fraction=0.001 must leave at least one "
                                        "image of each class in both splits"):
        sources.digits(test_fraction=0.001)


def test_torchvision_path_gives_the_same_kind_of_batches(tiny_cfg):
    """dataset.loader=torch: PIL images through torchvision's transforms and a DataLoader."""
    device_path = load(tiny_cfg(), batch_size=100)
    torch_path = load(tiny_cfg("dataset.loader=torch", "dataset.num_workers=0"), batch_size=100)
    (a, ya), (b, yb) = next(device_path.train.epoch(1)), next(torch_path.train.epoch(1))
    assert a.shape == b.shape and a.dtype == b.dtype and len(torch_path.train) == 3
    assert torch.equal(ya, yb)  # the same order: both come from the epoch's generator
    assert abs(a.mean() - b.mean()) < 0.1 and abs(a.std() - b.std()) < 0.1
    x, _ = next(torch_path.test.epoch(0))
    # No augmentation: the same pixels, normalised in another order of float32 operations.
    torch.testing.assert_close(x, next(device_path.test.epoch(0))[0], rtol=0, atol=1e-5)
