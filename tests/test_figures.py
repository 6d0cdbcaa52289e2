"""Figure grids (conf/experiment/fig_*.yaml): each one runs as a multirun on tiny data and ends
with its figure and table; the figure code reads records only; the W&B report spec is written
offline."""

import json
import math
import runpy
import sys

import pytest
from omegaconf import OmegaConf
from PIL import Image

from src.config.prepare import prepare
from src.config.resolvers import CONF, grid_folder_names
from src.errors import UserError
from src.figures import draw, get_figure, load_jobs, series
from src.figures.__main__ import main as figures_main
from src.figures.claims import where
from src.figures.registry import names
from src.report import main as report_main
from tests.conftest import EXPERIMENTS, TINY
from tests.helpers.figures import write_job

FIG_EXPERIMENTS = [e for e in EXPERIMENTS if e.startswith("fig_")]
STEPS = ["trainer.max_steps=2", "trainer.log_every_n_steps=1"]

# How each figure grid runs in seconds: one seed, the fewest jobs that still draw every curve.
# A fig_* config without an entry here fails test_every_figure_grid_has_a_test.
FIG_OVERRIDES = {
    "fig_exp_lr": [*STEPS, "seed=0"],
    # 5e-4 is 0.0005 in a job's overrides: the grid's folder must be one all the same.
    "fig_texp_vs_step": [*STEPS, "seed=0", "schedule.milestones=[1]",
                         "optimizer.weight_decay=5e-4"],
    "fig_instant_decay": [*STEPS, "schedule.milestones=[1]"],
    "fig_cosine": [*STEPS, "seed=0"],
    "fig_norms": [*STEPS, "seed=0", "model=preresnet20", "normalisation=bn,gn"],
    "fig_equilibrium": [*STEPS, "schedule.milestones=[1]"],
    "fig_toy": ["toy.steps=4", "toy.log_every=2", "toy.quadrature_points=8"],
    "fig_auto_rate": [*STEPS, "seed=0,1", "optimizer.lr=0.1,1e6", "auto_rate=sgd,no_norm",
                      "model.kwargs.width=0.125"],
    "fig_auto_rate_convergence": [*STEPS, "seed=0", "optimizer.lr=1", "descent=gd,sgd",
                                  "model.kwargs.width=0.125"],
    "fig_rotational_equilibrium": [*STEPS, "rotation=base,explr,step", "model=preresnet20"],
    "fig_rotation_optimizers": [*STEPS, "rotation=adamw,lion_explr", "model=preresnet20"],
    "fig_adamw_twin": [*STEPS, "seed=0", "twin=exact,naive", "model=preresnet20"],
    "fig_twin_divergence": [*STEPS, "schedule=exp", "trainer.precision=fp64,fp32",
                            "model=preresnet20"],
}
# budget=mini composes and runs the same jobs: fewer of them are enough to show it.
MINI_FEWER_JOBS = {"seed=0,1": "seed=0", "model.norm=bn,gn": "model.norm=gn"}


def run_grid(experiment: str, overrides, monkeypatch, tmp_path, tiny=TINY):
    """`python -m src.train +experiment=... OVERRIDES` in tmp_path, in this process."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["src/train.py", f"+experiment={experiment}", *tiny,
                                      *overrides])
    runpy.run_module("src.train", run_name="__main__")
    (sweep_dir,) = (tmp_path / "outputs" / "multirun" / experiment).iterdir()
    return sweep_dir


@pytest.mark.filterwarnings("ignore:'src.train' found in sys.modules")
def test_a_figure_grid_refuses_to_sweep_other_keys(monkeypatch, tmp_path, capfd):
    """optimizer.lr=0.05,0.1 would put each job in a folder of its own, apart from the figure."""
    with pytest.raises(SystemExit) as exit_:
        run_grid("fig_texp_vs_step", [*STEPS, "seed=0,1", "optimizer.lr=0.05,0.1"], monkeypatch,
                 tmp_path)
    err = capfd.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert "error: optimizer.lr=0.05,0.1: fig_texp_vs_step sweeps only schedule, seed" in err
    assert not (tmp_path / "outputs").exists()


def test_every_figure_grid_has_a_test():
    assert set(FIG_OVERRIDES) == set(FIG_EXPERIMENTS), "give each fig_* config its overrides"
    unclaimed = {name for name in names() if not get_figure(name).checks}
    assert unclaimed == {"fig_instant_decay"}, "a figure's module should state its claims"


def test_the_registry_knows_exactly_the_figures_the_configs_name():
    """conf/experiment/fig_*.yaml name their figure (`figure: <name>`); each has a module."""
    named = {OmegaConf.load(path).figure for path in CONF.glob("experiment/fig_*.yaml")}
    assert len(named) == len(FIG_EXPERIMENTS)
    assert set(names()) == named


def test_an_unknown_figure_is_one_line_listing_the_known_ones(tmp_path, capsys):
    known = "known: " + ", ".join(sorted(names()))
    with pytest.raises(UserError) as error:
        get_figure("fig_nonexistent")
    message = str(error.value)
    assert "\n" not in message and "'fig_nonexistent'" in message and message.endswith(known)
    grid = fake_grid(tmp_path)  # a grid whose jobs name a figure no module registers
    for config in grid.glob("*/config.yaml"):
        config.write_text(config.read_text().replace("figure: fig_texp_vs_step",
                                                     "figure: fig_nonexistent"))
    assert figures_main([str(grid)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {grid}: no figure named 'fig_nonexistent'; {known}\n"


@pytest.mark.filterwarnings("ignore:'src.train' found in sys.modules")
@pytest.mark.parametrize("budget", ["paper", "mini"])
@pytest.mark.parametrize("experiment", FIG_EXPERIMENTS)
def test_figure_grid_runs_and_draws(experiment, budget, monkeypatch, tmp_path):
    overrides, tiny = FIG_OVERRIDES[experiment], TINY
    if budget == "mini":  # the paper's epochs and milestones, mapped; max_steps cuts the run
        overrides = [MINI_FEWER_JOBS.get(o, o) for o in overrides
                     if not o.startswith("schedule.milestones=")]
        # in this process (budget=mini's joblib_2 starts workers: tests/test_launchers.py)
        tiny = [*(o for o in TINY if not o.startswith("trainer.epochs=")), "hydra/launcher=basic"]
    sweep_dir = run_grid(experiment, [*overrides, f"budget={budget}"], monkeypatch, tmp_path,
                         tiny)
    figure = get_figure(experiment)
    jobs = load_jobs(sweep_dir)
    assert jobs and all(job.status in ("completed", "diverged") for job in jobs)
    assert all(OmegaConf.select(job.config, "hydra") is None for job in jobs)
    assert {job.config.budget.name for job in jobs} == {budget}
    with Image.open(sweep_dir / "figure.png") as image:
        assert image.width > 400 and image.height > 200
    assert (sweep_dir / "figure.pdf").read_bytes().startswith(b"%PDF")
    table = (sweep_dir / "table.md").read_text()
    for job in jobs:
        assert figure.curve(job.config) in table
    for key in figure.final:
        assert f"| {key} |" in table
    # two steps decide few claims: each is measured or says why not, none crashes
    written = json.loads((sweep_dir / "table.json").read_text())
    if jobs[0].config.task == "train":  # the setting names the image size (fig_norms: 8-16)
        sizes = sorted({job.config.dataset.image_size for job in jobs})
        size = sizes[0] if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
        assert written["setting"].startswith(f"{jobs[0].config.dataset.name} {size} px, ")
    found = written["claims"]
    assert [c["name"] for c in found] == [c.name for c in figure.checks]
    for claim in found:
        assert claim["holds"] in (True, False, None)
        assert all(isinstance(v, int | float) for v in claim["thresholds"].values())
        assert (claim["holds"] is True) == (claim["why"] == "")
        assert claim["holds"] is not None or claim["why"].startswith("n/a: ")
    if experiment == "fig_auto_rate":  # LR 1e6 without normalisation diverges: counted, no value
        seeds = len(where(jobs, "seed", 1)) and 2 or 1
        rows = [line for line in table.splitlines()
                if line.startswith("| no normalisation, optimizer.lr=1000000.0 | test/acc")]
        assert rows and f"| — | {seeds}/{seeds} |" in rows[0], rows


def fake_grid(root, name="fig_texp_vs_step", overrides=(), jobs=None):
    """A grid of Step Decay and TEXP jobs with the given test accuracies per epoch."""
    jobs = jobs or {("step", 0): [0.5, 0.7], ("step", 1): [0.6, 0.8], ("texp", 0): [0.4, 0.9]}
    for (schedule, seed), accs in jobs.items():
        records = [{"step": 10 * (i + 1), "epoch": i + 1.0, "test/acc": acc, "lr": 0.1,
                    "si/angular_update_epoch": 0.3} for i, acc in enumerate(accs)]
        write_job(root / f"schedule={schedule},seed={seed}", name,
                  [f"schedule={schedule}", f"seed={seed}", *overrides], records,
                  {"status": "completed", "test/acc": accs[-1], "si/angular_update_epoch": 0.3})
    return root


def test_series_is_the_mean_and_range_over_seeds(tmp_path):
    jobs = [job for job in load_jobs(fake_grid(tmp_path)) if job.config.schedule.name == "step"]
    xs, mean, low, high = series(jobs, "epoch", "test/acc")
    assert xs == [1.0, 2.0]
    assert mean == pytest.approx([0.55, 0.75], rel=1e-15)
    assert (low, high) == ([0.5, 0.7], [0.6, 0.8])


def test_table_compares_with_the_paper_only_in_its_setting(tmp_path):
    small = fake_grid(tmp_path / "small", overrides=["dataset=digits", "trainer.epochs=6"])
    draw(small)
    table = (small / "table.md").read_text()
    assert "| Step Decay | test/acc | 0.75 ± 0.071 (2) | 0/2 | 0.950 | read off the plot |" in table
    assert "n/a: not the paper's setting (dataset.name=digits, trainer.epochs=6)" in table
    paper = fake_grid(tmp_path / "paper")  # the fig_texp_vs_step config as it is: CIFAR-10
    draw(paper)
    table = (paper / "table.md").read_text()
    assert "| 0.950 | read off the plot | -0.200 |" in table  # mean(0.7, 0.8) - 0.95
    assert "| 0.948 | read off the plot | -0.048 |" in table  # 0.9 - 0.948


def test_unfinished_jobs_are_left_out(tmp_path):
    grid = fake_grid(tmp_path)
    (grid / "schedule=texp,seed=0" / "summary.json").write_text('{"status": "preempted"}')
    draw(grid)
    table = (grid / "table.md").read_text()
    assert "1 preempted" in table and "| TEXP |" not in table


def test_figures_cli_redraws_one_grid_or_all(tmp_path, capsys):
    first = fake_grid(tmp_path / "outputs" / "multirun" / "fig_texp_vs_step" / "paper")
    second = fake_grid(tmp_path / "outputs" / "multirun" / "fig_cosine" / "paper",
                       name="fig_cosine", jobs={("cosine", 0): [0.5], ("equivalent", 0): [0.6]})
    assert figures_main([str(first)]) == 0
    assert (first / "figure.png").exists() and not (second / "figure.png").exists()
    assert figures_main(["--all", str(tmp_path / "outputs")]) == 0
    assert (second / "figure.png").exists() and (second / "table.md").exists()


@pytest.mark.parametrize("args, words", [
    (["{tmp}/missing"], "is not a folder"),
    (["{tmp}"], "holds no job of a figure grid"),
    (["--all", "{tmp}"], "no figure grid under"),
])
def test_figures_cli_errors(args, words, tmp_path, capsys):
    assert figures_main([a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and err.count("\n") == 1


def test_grid_folder_names_split_launch_and_job():
    overrides = ["+experiment=fig_texp_vs_step", "dataset=digits", "trainer.epochs=6",
                 "schedule=texp", "seed=1", "trainer.resume=never", "logger=none",
                 "optimizer.weight_decay=1e-2"]
    swept = {"schedule": "step,texp", "seed": "0,1,2"}
    assert grid_folder_names(overrides, swept, "launch") == (
        "dataset=digits,optimizer.weight_decay=0.01,trainer.epochs=6")
    assert grid_folder_names(overrides, swept, "job") == "schedule=texp,seed=1"
    assert grid_folder_names(overrides[:1], swept, "launch") == "paper"


def test_report_offline_writes_the_spec(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    grid = fake_grid(tmp_path)
    draw(grid)
    assert report_main([str(grid)]) == 0
    out = capsys.readouterr().out
    assert "wandb sync" in out and "WANDB_MODE=online python -m src.report" in out
    spec = json.loads((grid / "report.json").read_text())
    assert spec["title"].startswith("fig_texp_vs_step")
    panels = [p for block in spec["blocks"] for p in block.get("panels", [])]
    assert [p["y"] for p in panels] == [["test/acc"], ["si/angular_update_epoch"], ["lr"]]
    assert [p["log_y"] for p in panels] == [False, False, True]
    (runset,) = [r for block in spec["blocks"] for r in block.get("runsets", [])]
    assert "fig_texp_vs_step/paper" in runset["filters"]
    assert runset["groupby"] == ["schedule.name"]
    assert any("| Step Decay |" in block.get("text", "") for block in spec["blocks"])


def test_report_of_a_grid_without_wandb_is_refused(tmp_path, capsys):
    assert report_main([str(fake_grid(tmp_path, overrides=["logger=none"]))]) == 2
    assert "logger=none" in capsys.readouterr().err


def test_report_online_without_a_key_is_one_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path))
    assert report_main([str(fake_grid(tmp_path / "grid"))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: W&B could not save the report") and "Traceback" not in err


def test_diverged_job_has_no_final_value(tmp_path):
    grid = fake_grid(tmp_path)
    (grid / "schedule=texp,seed=0" / "summary.json").write_text(
        '{"status": "diverged", "test/acc": 0.9}')
    (job,) = [j for j in load_jobs(grid) if j.config.schedule.name == "texp"]
    assert math.isnan(job.final("test/acc"))


@pytest.mark.filterwarnings("ignore:'src.train' found in sys.modules")
def test_figure_grid_logs_its_figure_and_tables_to_wandb(monkeypatch, tmp_path, caplog):
    tiny = [o for o in TINY if o != "logger=none"] + ["logger.mode=offline"]
    sweep_dir = run_grid("fig_toy", FIG_OVERRIDES["fig_toy"], monkeypatch, tmp_path, tiny)
    assert "W&B failed" not in caplog.text and "W&B could not start" not in caplog.text
    (run,) = (sweep_dir / "wandb").glob("offline-run-*")
    assert list(run.glob("files/media/images/figure_*.png"))
    assert list(run.glob("*.wandb"))


def test_last_checkpoint_goes_to_wandb_only_when_asked(tiny_cfg, tmp_path, monkeypatch):
    from src.engine.run import train
    from src.tracking.wandb_sink import WandbSink

    logged = []
    monkeypatch.setattr(WandbSink, "log_checkpoint", lambda self, path: logged.append(path))
    for opt_in in ("false", "true"):
        train(prepare(tiny_cfg("logger=wandb", "logger.mode=offline", "model=preresnet20",
                       "dataset.image_size=8", "dataset.crop_padding=1", "trainer.batch_size=64",
                       "trainer.max_steps=1", f"logger.log_checkpoints={opt_in}")),
              tmp_path / opt_in)
    assert logged == [tmp_path / "true" / "checkpoints" / "last.pt"]
