"""One-off maintainer script (issue #41): complete every weights tag's record in weights/manifest.json from the
repository's own history, so that each tag carries its full recipe, architecture arguments, test views, data set,
per-seed test accuracies, date, commit and file sizes. Existing values stay; keys are added, and a note gains what
the history showed. Run it again and it writes the same file.

    python3 benchmarks/tag_records.py    # at the root of a full clone: it reads the git history

Where each fact comes from:
- the runs a tag shipped from: the version of docs/runs/MODEL[/TAG]/seedK/report.json, anywhere in the history,
  whose training time and seed are the tag's (`metrics.train_seconds`, `seed`), with its sibling seeds there;
- `date`: the commit that first held the file's bytes (the v1 files were renamed to NAME.v1.safetensors later);
- `recipe`: the shipped seed's config.json, with the fields added to Recipe since at their defaults (which keep
  the behaviour it trained with), and a teacher named before tags existed by the tag the record names;
- `arch`: the spec's builder arguments with the tag's recorded difference; `tta_flip`, `tta_shift`: the spec's
  views, which every tag was measured with but cifar_cnn_best.v1 (recorded: no shifted views);
- `commit`: the run's `git_commit`; where that commit's code gives the model another parameter count than the
  run recorded, the note says which later commit first has the run's architecture.
"""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
import subprocess
from pathlib import Path

from zoo.core.numbers import fraction, seconds
from zoo.core.recipe import Recipe
from zoo.core.registry import get_spec
from zoo.core.weights import read_manifest, split_tag, write_manifest

WEIGHTS = Path("weights")


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def show_json(commit: str, path: str) -> dict | None:
    shown = subprocess.run(["git", "show", f"{commit}:{path}"], capture_output=True, text=True)
    return json.loads(shown.stdout) if shown.returncode == 0 else None


def shipped_on(file: str) -> str:
    """The date of the first commit that held these bytes, under any name."""
    blob = git("hash-object", str(WEIGHTS / file)).strip()
    return git("log", "--reverse", "--format=%as", f"--find-object={blob}").split()[0]


def shipped_runs(model: str, tag: str, record: dict) -> dict[int, tuple[dict, dict]]:
    """seed -> (config, report) of the study the tag shipped from, as first committed."""
    found = []
    for folder in (f"docs/runs/{model}/{tag}", f"docs/runs/{model}"):
        report = f"{folder}/seed{record['seed']}/report.json"
        for commit in git("log", "--format=%H", "--", report).split():
            shown = show_json(commit, report)
            if shown and seconds(shown["train_seconds"]) == record["metrics"]["train_seconds"]:
                found.append((int(git("log", "-1", "--format=%ct", commit)), commit, folder))
    if not found:
        raise SystemExit(f"{model}.{tag}: no committed run record has its training time")
    _, commit, folder = min(found)
    runs = {}
    for seed in range(8):
        config = show_json(commit, f"{folder}/seed{seed}/config.json")
        if config is not None:
            runs[config["recipe"]["seed"]] = (config, show_json(commit, f"{folder}/seed{seed}/report.json"))
    return runs


def code_note(model: str, config: dict) -> str | None:
    """Where the recorded commit's code does not have the run's parameter count, what the history says instead."""
    commit, params = config["git_commit"], f"{config['params']:_}"
    if subprocess.run(["git", "grep", "-q", params, commit, "--", "zoo"]).returncode == 0:
        return None
    first = git("log", "--reverse", "--format=%h", f"-S{params}", "--", "zoo").split()[0]
    declared = re.search(rf'"{model}".*?params=([0-9_]+)', git("grep", "-h", f'"{model}"', commit, "--", "zoo"))
    theirs = f" ({int(declared.group(1)):,} parameters)" if declared else ""
    return (
        f"its run recorded commit {commit[:7]}, whose {model} had other layers{theirs}; the run's "
        f"{config['params']:,} parameters are those of the architecture first committed in {first}, so it trained "
        "from a working tree ahead of its recorded commit"
    )


def complete(model: str, dataset: str, tag: str, record: dict) -> dict:
    spec = get_spec(model)
    runs = shipped_runs(model, tag, record)
    config, report = runs[record["seed"]]
    accuracies = {seed: fraction(report["test_accuracy"]) for seed, (_, report) in sorted(runs.items())}
    metrics = record["metrics"]
    assert accuracies[record["seed"]] == record.get("run_test_accuracy", metrics["test_accuracy"]), tag
    assert len(accuracies) == metrics["seeds"], tag
    assert abs(statistics.fmean(accuracies.values()) - metrics["test_accuracy_mean"]) < 1e-6, tag
    notes = []
    recipe = Recipe(**config["recipe"])
    if recipe.teacher and "." not in recipe.teacher:
        assert split_tag(record["teacher"])[0] == recipe.teacher, tag
        recipe = dataclasses.replace(recipe, teacher=record["teacher"])
        said = f"its run's recipe named the teacher `{split_tag(record['teacher'])[0]}`, the default weights then"
        notes.append(f"{said}: the recipe here names them by tag, {record['teacher']}")
    notes += [note for note in [code_note(model, config)] if note]
    known = record.get("note") or ""
    note = "; ".join([known, *(n for n in notes if n not in known)] if known else notes)
    views = {"tta_flip": spec.tta_flip, "tta_shift": record.get("tta_shift", spec.tta_shift)}
    return {
        **record,
        "dataset": dataset,
        "recipe": recipe.to_dict(),
        "arch": json.loads(json.dumps({**spec.arch, **record.get("arch", {})})),
        **views,
        "seed_test_accuracies": {str(seed): accuracy for seed, accuracy in accuracies.items()},
        "date": shipped_on(record["file"]),
        "commit": config["git_commit"],
        "size": (WEIGHTS / record["file"]).stat().st_size,
        "onnx_size": (WEIGHTS / record["onnx_file"]).stat().st_size,
        **({"note": note} if note else {}),
    }


def main() -> None:
    entries = read_manifest(WEIGHTS)
    for model, entry in entries.items():
        for tag, record in entry["tags"].items():
            entry["tags"][tag] = complete(model, entry["dataset"], tag, record)
            print(f"{model}.{tag}: shipped {entry['tags'][tag]['date']}, commit {entry['tags'][tag]['commit'][:7]}")
    write_manifest(WEIGHTS, entries)


if __name__ == "__main__":
    main()
