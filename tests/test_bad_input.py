"""Bad input, table-driven: every case gives one clear message naming the key or the file and
what is allowed, a non-zero exit, no traceback, and leaves an existing run's records as they were.

The command runs in this process, as `python -m src.train` would (runpy); tests/test_train.py
runs a few of them as real processes.
"""

import hashlib
import pickle
import runpy
import shutil
import sys

import pytest

from src.config.resolvers import compose_config
from tests.conftest import TINY, tiny, write_image_folder
from tests.helpers.runs import train

RECORDS = ("config.yaml", "metadata.json", "metrics.jsonl", "summary.json",
           "checkpoints/last.pt", "checkpoints/previous.pt")


BASE = ["trainer.max_steps=2"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("finished")
    assert train(compose_config([*TINY, *BASE]), run_dir)["status"] == "completed"
    return run_dir


def fingerprint(run_dir) -> dict:
    return {name: hashlib.sha256((run_dir / name).read_bytes()).hexdigest()
            for name in RECORDS if (run_dir / name).exists()}


def cifar_root(tmp_path, corrupt: bool):
    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    if corrupt:
        for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                     "data_batch_5", "test_batch", "batches.meta"):
            (folder / name).write_bytes(pickle.dumps({"not": "cifar"})[:20])
    return folder.parent


def imagenet_root(tmp_path, corrupt_image: bool):
    root = write_image_folder(tmp_path / "imagenet")
    if corrupt_image:
        (root / "train" / "a" / "1.png").write_bytes(b"not a png")
    return root


def unfinished(run_dir):
    (run_dir / "summary.json").write_text('{"status": "preempted"}')


def corrupt_checkpoints(run_dir):
    unfinished(run_dir)
    for name in ("last.pt", "previous.pt"):
        (run_dir / "checkpoints" / name).write_bytes(b"\x00" * 100)


def shorten_records(run_dir):
    unfinished(run_dir)
    with open(run_dir / "metrics.jsonl", "r+b") as f:
        f.truncate(10)


SPECIAL = {"corrupt-checkpoints": corrupt_checkpoints, "short-records": shorten_records}


# (overrides, words the message must contain). Each case runs in a copy of a finished run of
# BASE's config, except those that name their own folder ({tmp} is the case's temporary folder):
# a config that passes the checks but differs from BASE's would be refused there, rightly.
FRESH = " hydra.run.dir={tmp}/fresh"
CASES = [
    # Hydra: unknown keys, options, syntax
    ("trainer.epoch=3", "trainer.epoch"),
    ("no_such_key=1", "no_such_key"),
    ("model=resnet9000", "model/resnet9000"),
    ("schedule=no_such_schedule", "schedule/no_such_schedule"),
    ("+experiment=no_such_experiment", "experiment/no_such_experiment"),
    ("dataset=mnist", "dataset/mnist"),
    ("trainer.epochs=[1,2", "no viable alternative at input '[1,2'"),
    # values: type, range, options
    ("trainer.epochs=0", "trainer.epochs=0 is not allowed: use an integer >= 1"),
    ("trainer.epochs=ten", "trainer.epochs='ten' is not allowed"),
    ("trainer.epochs=1.5", "trainer.epochs=1.5 is not allowed"),
    ("trainer.batch_size=-8", "trainer.batch_size=-8 is not allowed"),
    ("trainer.max_steps=0", "trainer.max_steps=0 is not allowed: use null or an integer >= 1"),
    ("trainer.log_every_n_steps=0", "trainer.log_every_n_steps"),
    ("trainer.precision=fp16", "trainer.precision='fp16' is not allowed: use one of fp32"),
    ("trainer.device=tpu", "trainer.device='tpu' is not allowed: use one of auto, cpu, cuda"),
    ("trainer.renormalize_above=-1", "trainer.renormalize_above"),
    ("trainer.bn_recalibration_batches=-1", "trainer.bn_recalibration_batches"),
    ("trainer.checkpoint_every_n_epochs=0", "trainer.checkpoint_every_n_epochs"),
    ("trainer.eval_every_n_epochs=0", "trainer.eval_every_n_epochs=0 is not allowed"),
    ("trainer.track_params=[no.such.weight]" + FRESH, "trainer.track_params"),
    ("optimizer.projected=maybe", "optimizer.projected='maybe' is not allowed"),
    ("optimizer.projected=true model.norm=none model.scale_invariant=false" + FRESH,
     "optimizer.projected=true needs scale-invariant weights"),
    ("+experiment=fig_auto_rate auto_rate=no_such_variant", "auto_rate/no_such_variant"),
    ("model.scale_invariant=maybe", "model.scale_invariant='maybe' is not allowed: use one of "
     "True, False, paper_b"),
    ("model=vgg11_cifar model.norm=none", "model.scale_invariant=paper_b needs a norm layer"),
    ("trainer.full_gradient_images=0", "trainer.full_gradient_images=0 is not allowed"),
    ("trainer.full_gradient_images=64 dataset.loader=torch" + FRESH,
     "trainer.full_gradient_images needs scale-invariant weights and dataset.loader=device"),
    ("optimizer.lr=0", "optimizer.lr=0 is not allowed: use a number > 0"),
    ("optimizer.lr=nan", "optimizer.lr=nan is not allowed"),
    ("optimizer.momentum=1", "optimizer.momentum=1 is not allowed: use a number in [0, 1)"),
    ("optimizer.weight_decay=-0.1", "optimizer.weight_decay"),
    ("seed=-1", "seed=-1 is not allowed"),
    ("model.name=resnet9000", "model.name='resnet9000' is not allowed: use a timm model name"),
    ("model.norm=batch", "model.norm='batch' is not allowed"),
    ("model.gn_groups=0", "model.gn_groups"),
    ("model.norm=none", "model.scale_invariant=true needs a norm layer"),
    ("logger.kind=tensorboard", "logger.kind"),
    ("schedule=step schedule.milestones=[5,2]",
     "schedule.milestones=[5, 2] is not allowed: use increasing"),
    ("schedule=step schedule.factor=2", "schedule.factor=2 is not allowed: use a number in (0, 1]"),
    # a value made by an interpolation names what it is made of (here optimizer.lr)
    ("+experiment=fig_equilibrium hydra.mode=RUN", "schedule.factor=4.0 (= ${{ratio:0.4,"
     "${{optimizer.lr}}}}) is not allowed"),  # (braces doubled: the words are formatted)
    ("schedule=texp schedule.momentum_correction=2", "schedule.momentum_correction=2 is not "
     "allowed: use true or false"),
    ("model=vgg11_cifar model.kwargs.width=0", "model.kwargs.width=0 is not allowed: use a "
     "number > 0"),
    ("model.head_norm=0", "model.head_norm=0 is not allowed: use a number > 0"),
    ("model.norm_eps=-1", "model.norm_eps=-1 is not allowed: use null or a number > 0"),
    ("+model.kwargs.no_such_argument=1" + FRESH, "no_such_argument"),
    ("schedule=cosine schedule.final_ratio=2", "schedule.final_ratio"),
    ("schedule=equivalent schedule.base=exp", "schedule.base='exp' is not allowed"),
    ("schedule=exp optimizer.weight_decay=0.05", "must be at most (1 - sqrt(momentum))^2"),
    ("schedule=texp optimizer.weight_decay=0.05", "optimizer.weight_decay=0.05"),
    ("schedule=instant_decay optimizer.momentum=0.99", "optimizer.momentum=0.99"),
    ("optimizer.momentum=-0.5", "optimizer.momentum=-0.5 is not allowed"),
    ("task=finetune", "task='finetune' is not allowed: use one of train, toy_wd_bn"),
    # files: datasets, checkpoints, folders
    ("dataset=cifar10 dataset.download=false dataset.root={tmp}/nowhere" + FRESH, "{tmp}/nowhere"),
    # first contact without CIFAR-10: the message offers the miniature on the embedded digits
    ("dataset=cifar10 dataset.download=false dataset.root={tmp}/empty" + FRESH,
     "or run the same experiment in miniature on the embedded digits: add dataset=digits "
     "budget=mini"),
    ("dataset=cifar10 dataset.download=false dataset.root={cifar}" + FRESH,
     "not found or corrupted"),
    ("dataset=imagenet dataset.root={tmp}/nowhere" + FRESH, "no train/ folder"),
    ("dataset=imagenet dataset.root={imagenet_bad} dataset.image_size=32 dataset.num_workers=0"
     + FRESH, "1.png is not a readable image"),
    ("trainer.resume={tmp}/none.pt", "trainer.resume={tmp}/none.pt: no such checkpoint file"),
    ("trainer.resume={tmp}/garbage.pt", "garbage.pt is not a readable checkpoint"),
    ("trainer.max_steps=3", "holds a run of another config (trainer.max_steps=2 there, 3 now)"),
    ("trainer.resume=never", "trainer.resume=never, but run folder"),
    ("corrupt-checkpoints", "last.pt is not a readable checkpoint"),
    ("short-records", "metrics.jsonl is shorter than its checkpoint says"),
    ("hydra.run.dir={tmp}/garbage.pt/run", "hydra.run.dir={tmp}/garbage.pt/run: cannot write"),
]


def test_the_table_is_large_enough():
    assert len(CASES) >= 30


# runpy warns that src.train is imported already (by this file): harmless here.
@pytest.mark.filterwarnings("ignore:'src.train' found in sys.modules")
@pytest.mark.parametrize("case, words", CASES, ids=[c for c, _ in CASES])
def test_bad_input(case, words, finished_run, tmp_path, capfd, monkeypatch):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    (tmp_path / "garbage.pt").write_bytes(b"garbage")
    names = {"tmp": tmp_path}
    if "{cifar}" in case:
        names["cifar"] = cifar_root(tmp_path, corrupt=True)
    if "{imagenet_bad}" in case:
        names["imagenet_bad"] = imagenet_root(tmp_path, corrupt_image=True)
    if case in SPECIAL:  # a damaged run folder, launched with the config of its run
        SPECIAL[case](run_dir)
        case = ""
    before = fingerprint(run_dir)
    overrides = [o.format(**names) for o in case.split()]
    if not any(o.startswith("hydra.run.dir") for o in overrides):
        overrides.append(f"hydra.run.dir={run_dir}")
    monkeypatch.setattr(sys, "argv", ["src/train.py", *tiny(*BASE, *overrides)])
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("src.train", run_name="__main__")
    out, err = capfd.readouterr()
    assert exit_.value.code not in (0, None)
    assert words.format(**names) in err, err
    assert "Traceback" not in out + err
    assert fingerprint(run_dir) == before
