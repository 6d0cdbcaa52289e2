"""The figure pages of docs/, rendered from committed files:
`python -m src.figures --docs docs/figures [GRID_DIR ...]`.

Each source is written once:

* DIR/<name>.json, a grid's table.json (its format: src/figures/tables.py), copied from the grid
  beside its figure.png as DIR/<name>.png: every measured number on a page comes from it;
* the figure's module in src/figures/gallery: its title, note, claims and thresholds;
* conf/experiment/fig_*.yaml (the file whose `figure:` names it): the header comment (what
  the grid runs, in the paper's setting) and the `budget=mini` comment (the miniature);
* DIR/notes/<name>.md where there is one: why a claim does not show at this budget, and what
  was tried (reasoning, not the grid's numbers).

Written: DIR/<name>.md for every registered figure, the index DIR/../figures.md, and the
figure table between the markers of the README.md two folders above DIR (when it has them).
"""

import json
import re
import shutil
from pathlib import Path

from src.config.resolvers import CONF
from src.errors import UserError
from src.figures.drawing import draw
from src.figures.registry import get_figure, names

MINI = "dataset=digits budget=mini"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
COMMAND = "python -m src.figures --docs docs/figures"


def experiment_files() -> dict[str, Path]:
    """Each figure's experiment file, by the figure it names (`figure: <name>`)."""
    found = {}
    for path in sorted((CONF / "experiment").glob("fig_*.yaml")):
        match = re.search(r"^figure:\s*(\S+)", path.read_text(), re.M)
        if match:
            found[match.group(1)] = path
    return found


def comments(path: Path) -> tuple[str, str]:
    """(the header comment, the budget=mini comment) of an experiment file, as prose."""
    blocks, block = [], []
    for line in path.read_text().splitlines() + [""]:
        if line.startswith("#") and "@package" not in line:
            block.append(line.lstrip("#").strip())
        elif block:
            blocks.append(plain(" ".join(block)))
            block = []
    header = blocks[0] if blocks and path.read_text().lstrip().startswith("#") else ""
    mini = next((b for b in blocks if b.startswith("budget=mini")), "")
    return header, re.sub(r"^budget=mini \([^)]*\):\s*", "", mini)


def plain(text: str) -> str:
    """Text of a module or a table as markdown: its asterisks are not emphasis."""
    return str(text).replace("*", r"\*")


def load_table(docs: Path, name: str) -> dict | None:
    path = docs / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def verdict(table: dict | None, name: str) -> str:
    """Whether the figure's claims hold on the committed table, in a few words."""
    if not get_figure(name).checks:
        return "qualitative: no claim to measure"
    if table is None:
        return "not measured yet"
    marks = [c["holds"] for c in table["claims"]]
    text = f"{marks.count(True)} of {len(marks)} claims hold"
    return text + (f", {marks.count(None)} undecided" if None in marks else "")


def number(value) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "—"}[value]
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ", ".join(map(number, value)) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k}: ({number(v)})" if isinstance(v, dict) else f"{k} {number(v)}"
                         for k, v in value.items())
    return str(value)


def measured_lines(measured: dict) -> list[str]:
    """A claim's measured numbers: one line, or a sub-item per entry that holds several."""
    if not any(isinstance(v, dict) for v in measured.values()):
        return [f"  Measured: {number(measured)}."] if measured else []
    return ["  Measured:"] + [f"  * {k}: {number(v)}" for k, v in measured.items()]


def claim_lines(name: str, table: dict | None) -> list[str]:
    found = {c["name"]: c for c in (table or {}).get("claims", [])}
    lines = []
    for check in get_figure(name).checks:
        claim = found.get(check.name)
        mark = ("not measured" if claim is None else
                {True: "holds", False: "does not hold", None: "undecided"}[claim["holds"]])
        statement = plain(check.statement[:1].upper() + check.statement[1:])
        lines += [f"* **`{check.name}`: {mark}.** {statement}; threshold: "
                  f"{plain(check.threshold)}."]
        lines += measured_lines(claim["measured"]) if claim else []
    return lines


def paper_text(paper: dict | None) -> list[str]:
    """A row's paper cells: the number (or range) with its source, and the difference."""
    if paper is None:
        return ["—"]
    values = dict.fromkeys((number(paper["low"]), number(paper["high"])))
    return ["-".join(values) + f" ({paper['source']})"]


def row_lines(name: str, table: dict) -> list[str]:
    figure = get_figure(name)
    lines = ["| curve | metric | ours: mean ± sd (n) | diverged | paper | difference |",
             "|---|---|---|---|---|---|"]
    for row in table["rows"]:
        where = ", ".join(p for p in (
            row["facet"] is not None and f"{figure.facet}={row['facet']}", row["curve"],
            row["sweep"] is not None and f"{figure.sweep}={row['sweep']}") if p)
        ours = (f"{number(row['mean'])} ± {number(row['sd'])} ({row['n']})" if row["n"] > 1
                else f"{number(row['mean'])} ({row['n']})")
        cells = [*paper_text(row["paper"]), row["difference_text"]]
        lines.append(f"| {where} | {row['metric']} | {ours} | {row['diverged']}/{row['jobs']} | "
                     + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def why_lines(name: str, table: dict | None, docs: Path) -> list[str]:
    lines = [f"* `{c['name']}`: {plain(c['why'])}." for c in (table or {}).get("claims", [])
             if c["holds"] is not True]
    if table is not None and not lines and get_figure(name).checks:
        lines = ["Every claim holds at this budget."]
    notes = docs / "notes" / f"{name}.md"
    if notes.is_file():
        lines += ([""] if lines else []) + notes.read_text().strip().splitlines()
    return lines or ["Not measured yet."]


def page(name: str, docs: Path) -> str:
    """docs/figures/<name>.md."""
    figure, table = get_figure(name), load_table(docs, name)
    path = experiment_files().get(name)
    header, mini = comments(path) if path else ("", "")
    lines = [f"# {name}: {plain(figure.title)}", "",
             f"<!-- Written by `{COMMAND}` from {name}.json, src/figures/gallery and "
             f"conf/experiment: edit those (or notes/{name}.md), not this page. -->", "",
             "```bash", f"python -m src.train +experiment={name} {MINI}   # in miniature",
             f"python -m src.train +experiment={name}   # the full-size setting", "```", "",
             *([f"**What it runs.** {header}", ""] if header else [])]
    lines += [f"**In miniature** (`{MINI}`): {mini}", ""] if mini else []
    lines += [f"**What the paper reports.** {plain(figure.note)}", ""] if figure.note else []
    lines += ["## The figure", ""]
    if (docs / f"{name}.png").is_file():
        lines += [f"![{name}]({name}.png)", ""]
    if table is None:
        lines += [f"Not measured yet: `python -m benchmarks.gallery --only {name}` runs the grid "
                  f"and writes {name}.json.", ""]
    else:
        jobs = ", ".join(f"{n} {s}" for s, n in sorted(table["jobs"].items()))
        lines += [f"Measured on {table['setting']} (grid `{table['grid']}`: {jobs}).", ""]
    if figure.checks:
        lines += ["## Claims", "", f"On `{MINI}`: {verdict(table, name)}.", "",
                  *claim_lines(name, table), ""]
    if table and table["rows"]:
        lines += ["## Final numbers beside the paper's", "", *row_lines(name, table), ""]
    lines += ["## What shows, what does not, and why", "", *why_lines(name, table, docs)]
    return "\n".join(lines) + "\n"


def figure_table(docs: Path, link: str) -> list[str]:
    """One line per figure: its page, the claim in a few words, whether it holds."""
    lines = ["| command | what it shows | on `budget=mini` |", "|---|---|---|"]
    for name in names():
        title = plain(get_figure(name).title).replace("|", "\\|")
        lines.append(f"| [`+experiment={name}`]({link}{name}.md) | {title} | "
                     f"{verdict(load_table(docs, name), name)} |")
    return lines


def index(docs: Path) -> str:
    """docs/figures.md: every figure, its verdict and its image."""
    rel = f"{docs.name}/"
    lines = ["# The papers' figures", "",
             f"<!-- Written by `{COMMAND}`: edit src/figures/docs.py, not this page. -->", "",
             "Each figure is a grid, `conf/experiment/fig_*.yaml`, that carries the paper's "
             "setting and runs without `-m`:", "", "```bash",
             f"python -m src.train +experiment=NAME {MINI}   # in miniature, in minutes",
             "python -m src.train +experiment=NAME   # the full-size setting", "```", "",
             "When the grid ends it draws `figure.png`, `figure.pdf`, `table.md` and `table.json` "
             "into its folder, `outputs/multirun/NAME/<overrides>/` ([running.md](running.md)). "
             "`budget=mini` runs the paper's schedule in fewer updates at the same intrinsic "
             "time ([method.md](method.md#budgets-by-intrinsic-time)); the levels are not the "
             "papers' (8x8 digits, not CIFAR-10), the shapes are what to compare. The pages "
             f"below are written from each grid's `table.json` by `{COMMAND} GRID_DIR ...`; "
             "`python -m benchmarks.gallery` runs every grid and writes them all.", "",
             *figure_table(docs, rel), ""]
    for name in names():
        lines += [f"## [{name}]({rel}{name}.md): {plain(get_figure(name).title)}", ""]
        if (docs / f"{name}.png").is_file():
            lines += [f"![{name}]({rel}{name}.png)", ""]
        lines += [f"On `{MINI}`: {verdict(load_table(docs, name), name)}.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def readme_with_table(text: str, docs: Path, readme: Path) -> str:
    """The README's text with the figure table between its markers replaced."""
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    link = docs.resolve().relative_to(readme.parent.resolve()).as_posix() + "/"
    return "\n".join([head + BEGIN, *figure_table(docs, link), END + tail])


def rendered(docs) -> dict[Path, str]:
    """Every file the command writes, with its text, from what DIR holds now."""
    docs = Path(docs)
    out = {docs / f"{name}.md": page(name, docs) for name in names()}
    out[docs.parent / "figures.md"] = index(docs)
    readme = docs.parent.parent / "README.md"
    if readme.is_file() and BEGIN in (text := readme.read_text()) and END in text:
        out[readme] = readme_with_table(text, docs, readme)
    return out


def grid_name(grid: Path) -> str:
    """The figure a grid draws, from its table.json (drawn first when it has none yet)."""
    if not grid.is_dir():
        raise UserError(f"{grid} is not a folder")
    if not (grid / "table.json").is_file():
        draw(grid)
    return json.loads((grid / "table.json").read_text())["figure"]


def render_docs(docs, grids=()) -> list[Path]:
    """Copy each grid's figure.png and table.json into docs as <name>.png and <name>.json (at
    most one grid a figure), then write every page; returns the files written."""
    docs = Path(docs)
    if not docs.is_dir():
        raise UserError(f"{docs} is not a folder")
    chosen: dict[str, Path] = {}
    for grid in map(Path, grids):
        name = grid_name(grid)
        if name in chosen:
            raise UserError(f"{chosen[name]} and {grid} are both grids of {name}: give one")
        chosen[name] = grid
    for name, grid in chosen.items():
        shutil.copyfile(grid / "table.json", docs / f"{name}.json")
        shutil.copyfile(grid / "figure.png", docs / f"{name}.png")
    written = rendered(docs)
    for path, text in written.items():
        path.write_text(text)
    return list(written)
