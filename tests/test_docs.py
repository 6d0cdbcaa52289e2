"""The docs: the figure pages are what `python -m src.figures --docs docs/figures` renders from
the committed tables, every figure has its table and image, links resolve, the README is a
screen; and the pieces of `python -m benchmarks.gallery` that need no training."""

import itertools
import json
import re
import shutil

import pytest

from benchmarks import gallery
from src.config.resolvers import compose_config
from src.data import train_images
from src.figures import draw
from src.figures.__main__ import main as figures_main
from src.figures.docs import BEGIN, END, comments, experiment_files, render_docs, rendered
from src.figures.registry import get_figure, names
from tests.conftest import ROOT
from tests.helpers.figures import write_job

DOCS = ROOT / "docs" / "figures"
REGENERATE = ("python -m benchmarks.gallery (every grid on dataset=digits budget=mini, then "
              "the pages), or python -m src.figures --docs docs/figures GRID_DIR ...")


def test_committed_pages_are_what_the_command_renders():
    stale = [str(path.relative_to(ROOT)) for path, text in rendered(DOCS).items()
             if not path.is_file() or path.read_text() != text]
    assert not stale, f"{stale}: run python -m src.figures --docs docs/figures"


@pytest.mark.parametrize("name", names())
def test_every_figure_has_its_table_and_image_committed(name):
    """Each registered figure's table.json and figure.png from its miniature grid, in
    docs/figures (fails for a new figure until its grid has run)."""
    missing = [f"{name}.{ext}" for ext in ("json", "png") if not (DOCS / f"{name}.{ext}").is_file()]
    assert not missing, f"docs/figures lacks {missing}: {REGENERATE}"
    assert json.loads((DOCS / f"{name}.json").read_text())["figure"] == name


IMAGES_COUNT = re.compile(r"trains on ([\d.]+)M images")
COUNTED = [p for p in sorted((DOCS / "notes").glob("*.md")) if IMAGES_COUNT.search(p.read_text())]


@pytest.mark.parametrize("note", COUNTED, ids=lambda p: p.stem)
def test_a_notes_count_of_the_papers_images_is_its_grids(note):
    """"trains on NM images" in a figure's note is what the paper-size grid trains on: each
    job's epochs x training images, summed over its sweep (seeds repeat a job). A count written
    by hand drifts when a grid changes."""
    experiment = f"+experiment={note.stem}"
    params = {k: str(v).split(",") for k, v in
              compose_config([experiment], hydra=True).hydra.sweeper.params.items()}
    seeds = len(params.pop("seed", [None]))
    images = 0
    for values in itertools.product(*params.values()):
        job = compose_config([experiment, *(f"{k}={v}" for k, v in
                                            zip(params, values, strict=True))])
        images += job.trainer.epochs * train_images(job.dataset)
    # the notes round the count to two or three figures
    count = float(IMAGES_COUNT.search(note.read_text())[1])
    assert count == pytest.approx(seeds * images / 1e6, rel=0.05)


def fake_grid(root):
    """A fig_texp_vs_step grid of two seeds a schedule, written by hand and drawn."""
    accs = {("step", 0): [0.5, 0.7], ("step", 1): [0.6, 0.8], ("texp", 0): [0.4, 0.9],
            ("texp", 1): [0.5, 0.8]}
    for (schedule, seed), values in accs.items():
        records = [{"step": 10 * (i + 1), "epoch": i + 1.0, "test/acc": acc, "lr": 0.1,
                    "si/angular_update_epoch": 0.3} for i, acc in enumerate(values)]
        write_job(root / f"schedule={schedule},seed={seed}", "fig_texp_vs_step",
                  [f"schedule={schedule}", f"seed={seed}", "dataset=digits"], records,
                  {"status": "completed", "test/acc": values[-1], "si/angular_update_epoch": 0.3})
    draw(root)
    return root


@pytest.fixture
def docs_tree(tmp_path):
    """docs/figures with its notes, and a README with the figure table's markers."""
    docs = tmp_path / "docs" / "figures"
    shutil.copytree(DOCS / "notes", docs / "notes")
    (tmp_path / "README.md").write_text(f"# x\n\n{BEGIN}\nSTALE TABLE\n{END}\n\nthe rest\n")
    return docs


def test_a_grid_goes_into_the_docs(docs_tree, tmp_path):
    grid = fake_grid(tmp_path / "grid" / "fig_texp_vs_step" / "dataset=digits")
    assert figures_main(["--docs", str(docs_tree), str(grid)]) == 0
    table = json.loads((docs_tree / "fig_texp_vs_step.json").read_text())
    assert table == json.loads((grid / "table.json").read_text())
    assert (docs_tree / "fig_texp_vs_step.png").read_bytes() == (grid / "figure.png").read_bytes()
    page = (docs_tree / "fig_texp_vs_step.md").read_text()
    figure = get_figure("fig_texp_vs_step")
    header, mini = comments(experiment_files()["fig_texp_vs_step"])
    assert page.startswith(f"# fig_texp_vs_step: {figure.title}\n")
    assert header in page and mini in page and figure.note in page
    for check in figure.checks:  # the statement from the module, the verdict from the table
        assert check.statement[1:] in page and f"`{check.name}`" in page
    band = next(c for c in table["claims"] if c["name"] == "test_acc_in_distribution")
    assert band["holds"] is None and band["why"] in page
    assert "| Step Decay | test/acc | 0.75 ± 0.0707 (2) | 0/2 | 0.95 (read off the plot) |" in page
    assert (DOCS / "notes" / "fig_texp_vs_step.md").read_text().strip() in page
    assert "![fig_texp_vs_step](fig_texp_vs_step.png)" in page
    readme = (tmp_path / "README.md").read_text()
    assert "STALE TABLE" not in readme and readme.endswith(f"{END}\n\nthe rest\n")
    assert ("| [`+experiment=fig_texp_vs_step`](docs/figures/fig_texp_vs_step.md) | "
            f"{figure.title} | 0 of 3 claims hold, 3 undecided |") in readme
    index = (tmp_path / "docs" / "figures.md").read_text()
    assert "(figures/fig_texp_vs_step.md)" in index and "(figures/fig_texp_vs_step.png)" in index
    # without grids the command only writes the pages again, from the committed tables
    before = {p: p.read_text() for p in rendered(docs_tree)}
    assert figures_main(["--docs", str(docs_tree)]) == 0
    assert {p: p.read_text() for p in before} == before


def test_a_figure_without_a_table_gets_its_page_all_the_same(docs_tree):
    render_docs(docs_tree)
    page = (docs_tree / "fig_exp_lr.md").read_text()
    assert "Not measured yet: `python -m benchmarks.gallery --only fig_exp_lr`" in page
    assert all(f"`{c.name}`: not measured." in page for c in get_figure("fig_exp_lr").checks)


def test_two_grids_of_one_figure_are_refused(docs_tree, tmp_path, capsys):
    a = fake_grid(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    assert figures_main(["--docs", str(docs_tree), str(a), str(b)]) == 2
    assert "are both grids of fig_texp_vs_step: give one" in capsys.readouterr().err
    assert not (docs_tree / "fig_texp_vs_step.json").exists()


def test_docs_takes_grid_folders_not_all(tmp_path):
    with pytest.raises(SystemExit) as exit_:
        figures_main(["--docs", str(tmp_path), "--all", str(tmp_path)])
    assert exit_.value.code == 2


README = (ROOT / "README.md").read_text()


def test_the_readme_is_a_screen_with_the_first_commands_early():
    lines = README.splitlines()
    assert len(lines) <= 200
    first = "\n".join(lines[:60])
    for command in ("scripts/setup.sh", "python -m src.train +experiment=exp_lr dataset=digits "
                    "budget=mini", "python -m pytest"):
        assert f"\n{command}\n" in first, command
    # no machines and no measured times: those live in benchmarks/RESULTS.md
    assert not re.search(r"EPYC|Xeon|AVX|\d+(\.\d+)? ?(s|min|ms)\b", README)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


MARKDOWN = [ROOT / "README.md", ROOT / "benchmarks" / "RESULTS.md",
            *(p for p in (ROOT / "docs").rglob("*.md")
              if p.name != "api.md" and p.parent.name != "notes")]  # notes: in their pages


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve_and_inline_math_stays_on_its_line(path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{path.name}: {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{path.name}: {target}"
    for line in text.splitlines():
        assert re.sub(r"`[^`]*`", "", line).replace("$$", "").count("$") % 2 == 0, line


def test_gallery_runs_every_grid_or_the_ones_named(tmp_path, capsys):
    every = gallery.parse(["--out", str(tmp_path / "g")])
    figures = {path.stem for path in experiment_files().values()}
    assert every.names[0] == "exp_lr" and set(every.names[1:]) == figures
    assert gallery.main(["--dry-run", "--only", "fig_toy,exp_lr", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"python -m src.train +experiment=exp_lr dataset=digits budget=mini "
        f"hydra.run.dir={tmp_path / 'exp_lr'}",
        f"python -m src.train +experiment=fig_toy dataset=digits budget=mini "
        f"hydra.sweep.dir={tmp_path / 'fig_toy'}"]
    inside = gallery.command("fig_toy", gallery.ROOT / "outputs" / "gallery" / "t" / "fig_toy")
    assert inside[-1] == "hydra.sweep.dir=outputs/gallery/t/fig_toy"  # as the docs will name it
    with pytest.raises(SystemExit):
        gallery.parse(["--only", "fig_nope"])
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    with pytest.raises(SystemExit):  # each gallery is a fresh launch
        gallery.parse(["--out", str(tmp_path / "used")])
    assert "--only: unknown fig_nope" in capsys.readouterr().err


def test_gallery_section_holds_times_claims_and_machine(tmp_path):
    grid = tmp_path / "fig_x"
    grid.mkdir()
    (grid / "table.json").write_text(json.dumps({"claims": [
        {"name": "a", "holds": True}, {"name": "b", "holds": False},
        {"name": "c", "holds": None}]}))
    where = gallery.machine()
    assert re.search(r", \d+ cores, torch \S+$", where)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", gallery.now())
    results = [gallery.Result("exp_lr", tmp_path / "exp_lr", 52.4, 0, machine=where, date="d1"),
               gallery.Result("fig_x", grid, 150.0, 1, gallery.claims_of(grid), where, "d2")]
    text = gallery.section(results)
    assert text.startswith("## Gallery\n") and f"Machine: {where}." in text
    assert "| exp_lr (the main job) | 52 s | 0 | — | — | — | d1 |" in text
    assert "| fig_x | 2.5 min | 1 | `a` | `b` | `c` | d2 |" in text
    assert "| **total** | **3.4 min** |" in text


def test_gallery_only_replaces_its_rows_and_keeps_the_others(tmp_path):
    """A run with --only rewrites its own rows; the rows of the runs it did not repeat come
    back from the section's comment, with their own dates and machines numbered."""
    results = tmp_path / "RESULTS.md"
    first = [gallery.Result("exp_lr", tmp_path / "e", 50.0, 0, machine="cpu A", date="d1"),
             gallery.Result("fig_toy", tmp_path / "t", 80.0, 0,
                            {True: ["x"], False: [], None: []}, "cpu A", "d1")]
    gallery.write_section(results, gallery.HEADING, gallery.section(first))
    earlier = gallery.earlier_rows(results)
    assert earlier == first  # read back whole: the folder, the claims by verdict
    again = gallery.Result("fig_toy", tmp_path / "t2", 70.0, 0,
                           {True: [], False: ["x"], None: []}, "cpu B", "d2")
    rows = gallery.merged(earlier, [again], ["exp_lr", "fig_toy"])
    gallery.write_section(results, gallery.HEADING, gallery.section(rows))
    text = results.read_text()
    assert "Machines: (1) cpu A; (2) cpu B." in text
    assert "| exp_lr (the main job) | 50 s | 0 | — | — | — | d1 (1) |" in text
    assert "| fig_toy | 70 s | 0 | — | `x` | — | d2 (2) |" in text
    assert "| **total** | **2.0 min** |" in text and text.count("<!-- gallery rows:") == 1
    assert gallery.earlier_rows(tmp_path / "absent.md") == []


def test_gallery_section_replaces_its_own_and_nothing_else(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\nIntro.\n\n## Other\n\nkept\n")
    gallery.write_section(results, "## Gallery", "## Gallery\n\nfirst\n")
    assert results.read_text() == ("# Benchmark results\n\nIntro.\n\n## Gallery\n\nfirst\n\n"
                                   "## Other\n\nkept\n")
    gallery.write_section(results, "## Gallery", "## Gallery\n\nsecond\n")
    assert results.read_text() == ("# Benchmark results\n\nIntro.\n\n## Gallery\n\nsecond\n\n"
                                   "## Other\n\nkept\n")
    fresh = tmp_path / "new.md"
    gallery.write_section(fresh, "## Gallery", "## Gallery\n\nonly\n")
    assert fresh.read_text() == "# Benchmark results\n\n## Gallery\n\nonly\n"
