"""Studies, experiments and sweeps: the blocks that summarise them, and the tables that `zoo study` and
`zoo experiment` write, regenerated from their committed runs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo import experiments, study
from zoo.core.registry import list_models
from zoo.docs.files import Regenerated
from zoo.docs.markdown import md_table, wrap


def study_summary_block(root: Path) -> str:
    """Where the Fashion-MNIST models stand against the studies' figures, from their run records."""
    names = [n for pattern in study.COMPARISON for n in list_models(pattern)]
    studies = [s for s in study.collect(names, root / "docs" / "runs") if s.name in study.REFERENCE]
    # A mean is a count of right answers over the test images: rounding keeps float error from deciding.
    floor = [s.name for s in studies if round(s.shipped_accuracy, 6) >= study.REFERENCE[s.name][1]]
    above = [s.name for s in studies if round(s.mean, 6) > study.REFERENCE[s.name][0]]
    goal = [s.name for s in studies if round(s.mean, 6) >= study.REFERENCE[s.name][2]]
    rising = [family.upper() + "s" for family in ("fcn", "cnn") if _rises([s for s in studies if s.family == family])]
    short = [f"`{s.name}`" for s in studies if s.name not in goal]
    return wrap(
        f"Of the {len(studies)} models, {len(floor)} ship weights at or above the floor they must reach, "
        f"{len(above)} have a mean over their seeds above the studies' best published figure, and "
        f"{len(goal)} reach their goal on that mean"
        + (f" (not yet: {', '.join(short)})" if short else "")
        + ". The mean rises with the budget among the "
        + (" and among the ".join(rising) if rising else "none of the families")
        + ". The table with every figure: [FCN vs CNN](study.md)."
    )


def _rises(members: list) -> bool:
    means = [s.mean for s in sorted(members, key=lambda s: s.params)]
    return len(means) > 1 and all(a < b for a, b in zip(means, means[1:], strict=False))


def _published(root: Path) -> list:
    return [e for e in experiments.EXPERIMENTS.values() if (root / "docs" / "experiments" / f"{e.name}.md").is_file()]


def experiments_block(root: Path) -> str:
    rows = [[f"[{e.name}]({e.name}.md)", e.title, f"`zoo experiment {e.name} --train`"] for e in _published(root)]
    runs = root / "docs" / "experiments" / "runs"
    folders = {v.seeded(s).run_dir(runs) for e in _published(root) for v in e.variants for s in e.seeds}
    seconds = sum(
        json.loads((f / "report.json").read_text())["train_seconds"] for f in folders if (f / "report.json").is_file()
    )
    total = f"The {len(folders)} runs behind these pages trained for {seconds / 3600:.0f} hours in all (a run that "
    return (
        md_table(["experiment", "what", "command"], rows)
        + "\n"
        + wrap(total + "several experiments share counts once).")
    )


def sweeps_block(root: Path) -> str:
    """Each published sweep from its trials' records: ranked as `zoo tune` ranks, finished trials first."""
    rows = []
    for page in sorted((root / "docs" / "tune").glob("*.md")):
        folder = page.with_suffix("")
        trials = []
        for trial in sorted(p for p in folder.iterdir() if (p / "config.json").is_file()) if folder.is_dir() else []:
            config = json.loads((trial / "config.json").read_text())
            epochs = [json.loads(line) for line in (trial / "metrics.jsonl").read_text().splitlines() if line.strip()]
            best = max((e["val_accuracy"] for e in epochs), default=None)
            trials.append(
                (len(epochs) >= config["recipe"]["epochs"], best, config["model"], config["recipe"]["epochs"])
            )
        if not trials:
            continue
        finished = [t for t in trials if t[0]]
        best = max(t[1] for t in (finished or trials) if t[1] is not None)
        rows.append([f"[{page.stem}]({page.name})", f"`{trials[0][2]}`", str(len(trials)), str(len(finished)),
                     f"{max(t[3] for t in trials)} epochs", f"{best:.2%}"])  # fmt: skip
    header = ["sweep", "model", "trials", "finished", "schedule", "best validation (finished trials)"]
    return md_table(header, rows, "llrrrr") if rows else "No sweep published yet.\n"


def study_outputs(root: Path, scratch: Path) -> dict[Path, Any]:
    """docs/study.md as `zoo study` writes it from docs/runs (its plot beside it)."""
    names = [n for pattern in study.COMPARISON for n in list_models(pattern)]
    studies = study.collect(names, root / "docs" / "runs")
    text = "# FCN vs CNN on Fashion-MNIST\n\n" + study.markdown_table(studies)
    return {Path("docs/study.md"): Regenerated(text, lambda: study.plot(studies, root / "docs" / "study.png"))}


def experiment_outputs(root: Path, scratch: Path) -> dict[Path, Any]:
    """Each published experiment's table as `zoo experiment NAME` writes it from docs/experiments/runs."""
    (scratch / "experiments").mkdir(parents=True, exist_ok=True)
    runs = scratch / "experiments" / "runs"
    if not runs.exists():
        runs.symlink_to((root / "docs" / "experiments" / "runs").resolve())
    outputs: dict[Path, Any] = {}
    for name in experiments.names():
        if not (root / "docs" / "experiments" / f"{name}.md").is_file():
            continue  # still training: unpublished until its runs are committed
        experiments.run_experiment(name, docs_dir=scratch)
        written = [Path("experiments") / f"{name}.md", Path("experiments") / f"{name}.png"]
        if name == "reference":
            written.append(Path("reference.md"))
        for path in written:
            if path.suffix == ".md":
                outputs[Path("docs") / path] = Regenerated(
                    (scratch / path).read_text(), _copier(scratch, root, written)
                )
    return outputs


def _copier(scratch: Path, root: Path, files: list[Path]) -> Callable[[], None]:
    def copy() -> None:
        for path in files:
            if (scratch / path).is_file():
                shutil.copyfile(scratch / path, root / "docs" / path)

    return copy
