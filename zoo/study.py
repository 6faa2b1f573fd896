"""The FCN-vs-CNN study: train every model over several seeds, aggregate, ship the best-validation seed (the
first seed where the runs held nothing out), and write the comparison table, plot and model cards that the
README shows.

    zoo study 'fcn_*' 'cnn_*' --train --seeds 0,1,2 --ship

Run records are the training engine's own run folders (docs/runs/<model>/seed<k>/, read through RunDir:
config, metrics and report). They are committed, checkpoints aside, so `zoo study` alone rebuilds the
published table, plot and model cards from them; everything here is recomputed from those records.
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import statistics
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from zoo.api import finish_run
from zoo.core import numbers
from zoo.core.catalog import model_info
from zoo.core.device import describe_hardware
from zoo.core.errors import ZooError
from zoo.core.files import atomic_write
from zoo.core.numbers import fraction, seconds
from zoo.core.recipe import Recipe
from zoo.core.registry import get_spec, list_models
from zoo.core.rundir import RunDir
from zoo.core.summary import count_params
from zoo.core.weights import ShippedWeights, shipped_weights, split_tag, tag_of, tags
from zoo.core.weights import ship as ship_weights_file
from zoo.export.shipped import export_shipped

# Best published test accuracy (mean over runs) of the originating studies, the floor we must reach,
# and our goal, per model (fractions).
REFERENCE = {
    "fcn_50k": (0.880, 0.890, 0.900),
    "fcn_100k": (0.889, 0.898, 0.907),
    "fcn_200k": (0.897, 0.905, 0.913),
    "cnn_10k": (0.900, 0.910, 0.925),
    "cnn_20k": (0.909, 0.920, 0.933),
    "cnn_50k": (0.915, 0.928, 0.940),
    "cnn_100k": (0.924, 0.934, 0.945),
    # CIFAR-10 (JPEG test set); published: airbench94's 94.01% on the canonical set, trained on an A100.
    "cifar_cnn_best": (0.9401, 0.920, 0.940),
    # published: airbench's "standard ResNet-18 training", 96.0% on the canonical set; the floor is issue #22's.
    "resnet18_cifar": (0.960, 0.920, 0.930),
}


@dataclass(frozen=True)
class ModelStudy:
    name: str  # registry name
    family: str  # fcn / cnn / resnet
    params: int  # parameters, frozen ones included
    macs: int  # multiply-accumulates per image
    seeds: list[int]  # seeds with a finished run
    test_accuracies: list[float]  # per seed, same order
    val_accuracies: list[float | None]  # per seed, same order; None where nothing was held out (val_size=0)
    train_seconds: list[float]  # per seed, same order
    best_seed: int  # the seed shipped: the best on validation, or the first where the runs held nothing out
    best_run: str  # its run folder
    run_hardware: list[str]  # per seed, same order: where each trained (seeds trained at once share a machine)
    recipe: dict = field(default_factory=dict)  # recipe of the best run
    teacher_sha256: str | None = None  # the weights that taught the best run, where its config recorded them
    notes: tuple[str, ...] = ()  # remarks recorded in the runs' reports (how a figure was measured)
    commit: str | None = None  # the git commit the best run recorded, where it did
    arch: dict = field(default_factory=dict)  # architecture arguments the best run changed from the registry's

    @property
    def mean(self) -> float:
        return statistics.fmean(self.test_accuracies)

    @property
    def std(self) -> float:
        return statistics.stdev(self.test_accuracies) if len(self.test_accuracies) > 1 else 0.0

    @property
    def shipped_accuracy(self) -> float:
        return self.test_accuracies[self.seeds.index(self.best_seed)]

    @property
    def hardware(self) -> str:
        """Where the shipped run trained."""
        return self.run_hardware[self.seeds.index(self.best_seed)]

    @property
    def chosen_by(self) -> str:
        """Why the shipped seed is the one shipped, for the card."""
        if self.val_accuracies and self.val_accuracies[0] is None:
            return "the first seed: the runs trained on every training image, so none can be ranked"
        return "best validation accuracy"

    def to_dict(self) -> dict[str, object]:
        reference = REFERENCE.get(self.name)
        return {
            "model": self.name, "family": self.family, "params": self.params, "macs": self.macs,
            "seeds": self.seeds, "test_accuracy_mean": self.mean, "test_accuracy_std": self.std,
            "test_accuracies": self.test_accuracies, "shipped_seed": self.best_seed,
            "shipped_test_accuracy": self.shipped_accuracy, "train_seconds_mean": statistics.fmean(self.train_seconds),
            "hardware": self.hardware, "published": reference[0] if reference else None,
            "must_reach": reference[1] if reference else None, "goal": reference[2] if reference else None,
        }  # fmt: skip


def run_dir_for(runs_dir: Path, name: str, seed: int) -> Path:
    return runs_dir / name / f"seed{seed}"


def train_seeds(names: list[str], seeds: list[int], runs_dir: Path, jobs: int = 1, **train_options: object) -> None:
    """Train each model with each seed; finished runs are kept, interrupted ones resumed.

    With jobs > 1 the runs train in that many worker processes at once. These models are far too small
    to fill a GPU, so a GPU trains several of them at once in about the time of one.
    """
    pending = [(name, seed) for name in names for seed in seeds]
    pending = [(n, s) for n, s in pending if not RunDir(run_dir_for(runs_dir, n, s)).finished]
    if jobs <= 1:
        for name, seed in pending:
            _train_one(name, seed, runs_dir, train_options)
        return
    # spawn, not fork: a forked child cannot use CUDA once the parent has touched it.
    context = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // jobs)
    options = {**train_options, "progress": False}  # several live displays would overwrite each other
    # One run per worker process: each starts with the registry as it is on disk now and leaves no GPU memory behind.
    pool = ProcessPoolExecutor(
        jobs, mp_context=context, initializer=torch.set_num_threads, initargs=(threads,), max_tasks_per_child=1
    )
    with pool:
        futures = [pool.submit(_train_one, name, seed, runs_dir, options) for name, seed in pending]
        try:
            for future in as_completed(futures):
                future.result()  # re-raises a worker's error here, in the parent
        except BaseException:
            pool.shutdown(cancel_futures=True)  # runs not yet started are dropped, running ones finish
            raise


def _train_one(name: str, seed: int, runs_dir: Path, train_options: dict[str, object]) -> None:
    finish_run(name, run_dir_for(runs_dir, name, seed), seed=seed, **train_options)


class _Run(NamedTuple):
    seed: int  # the run's recipe seed
    report: dict  # its report
    config: dict  # its config
    folder: Path  # where the two were found (its checkpoints, if any, sit beside them)


def _finished_runs(runs_dir: Path, name: str) -> list[_Run]:
    runs = []
    for folder in sorted((runs_dir / name).glob("seed*")):
        run = RunDir(folder)
        if run.finished:
            config = run.config()
            runs.append(_Run(config["recipe"]["seed"], run.report(), config, folder))
    return sorted(runs, key=lambda run: run.seed)


JPEG_NOTE = "test accuracy on CIFAR-10 (JPEG test set): the images re-encoded as JPEG at quality ≈75, not the canonical binaries"


def _notes(runs) -> tuple[str, ...]:
    """How the runs' figures were measured: what their reports say, and which copy of CIFAR-10 they used."""
    notes = {run.report["accuracy_note"] for run in runs if "accuracy_note" in run.report}
    if any("cifar10-jpeg" in str(run.config.get("data", "")) for run in runs):
        notes.add(JPEG_NOTE)
    return tuple(sorted(notes))


def _hardware(run: _Run) -> str:
    return run.config.get("hardware") or describe_hardware(run.config.get("device", "cpu"))


def collect(names: list[str], runs_dir: Path) -> list[ModelStudy]:
    studies = []
    for name in names:
        runs = _finished_runs(runs_dir, name)
        if not runs:
            continue
        unranked = [run.folder for run in runs if run.report["val_accuracy"] is None]
        if unranked and len(unranked) < len(runs):
            raise ZooError(
                f"{unranked[0]} has no validation accuracy (val_size=0) and other seeds do: train them alike"
            )
        # Runs that held nothing out cannot be ranked without looking at the test set, so the rule is fixed in
        # advance: the first seed ships (zoo train's default), whatever the others score.
        best = runs[0] if unranked else max(runs, key=lambda run: run.report["val_accuracy"])
        spec = get_spec(name)
        studies.append(
            ModelStudy(
                name=name,
                family=spec.family,
                params=spec.params,
                macs=spec.macs,
                seeds=[run.seed for run in runs],
                test_accuracies=[fraction(run.report["test_accuracy"]) for run in runs],
                val_accuracies=[fraction(run.report["val_accuracy"]) for run in runs],
                train_seconds=[seconds(run.report["train_seconds"]) for run in runs],
                best_seed=best.seed,
                best_run=str(best.folder),
                run_hardware=[_hardware(run) for run in runs],
                recipe=best.config["recipe"],
                teacher_sha256=best.config.get("teacher_weights_sha256"),
                notes=_notes(runs),
                commit=best.config.get("git_commit"),
                arch=best.config.get("arch", {}),
            )
        )
    return studies


def ship(studies: list[ModelStudy], weights_dir: Path, data_dir: str | os.PathLike[str] | None = None) -> None:
    """Pin each model's shipped seed's checkpoint (the best on validation, or the first where nothing was held
    out) as its new default weights tag in weights/ (earlier tags keep their files) with its complete record,
    export and validate its ONNX file, and record both in the manifest."""
    sources = {study.name: RunDir(study.best_run).best_checkpoint for study in studies}
    for name, source in sources.items():
        if not source.is_file():
            # Committed run records carry no checkpoints: only the machine that trained them can ship.
            raise ZooError(f"cannot ship {name}: {source} is missing (only the run's records are here)")
    for study in studies:
        spec = get_spec(study.name)
        record = tag_record(study)
        with tempfile.TemporaryDirectory() as work:
            source = sources[study.name]
            if spec.shipped_dtype == "float16":
                source = _stored_in_float16(source, Path(work) / source.name, record, data_dir)
            record["size"] = source.stat().st_size
            tag = ship_weights_file(weights_dir, study.name, spec.dataset, source, record)
        # The validated ONNX file beside the weights (the torch-free path of predict and serve). The registry reads
        # the manifest just written, so the file's metadata names the new weights and their accuracy.
        export_shipped(study.name, tag, weights_dir, data_dir)


def tag_record(study: ModelStudy) -> dict[str, object]:
    """Everything that makes the shipped seed's weights known and reproducible, for the manifest: metrics over
    the study's seeds, the full recipe and architecture arguments, the test views, where, when and from which
    commit it trained."""
    spec = get_spec(study.name)
    record: dict[str, object] = {
        "metrics": numbers.metrics(
            {
                "test_accuracy": study.shipped_accuracy,
                "test_accuracy_mean": study.mean,
                "test_accuracy_std": study.std,
                "seeds": len(study.seeds),
                "train_seconds": study.train_seconds[study.seeds.index(study.best_seed)],
            }
        ),
        "hardware": study.hardware,
        "seed": study.best_seed,
        "dataset": spec.dataset,
        # Fields added to Recipe after the run take their defaults, which keep the behaviour it trained with.
        "recipe": Recipe(**study.recipe).to_dict(),
        "arch": json.loads(json.dumps({**spec.arch, **study.arch})),
        "tta_flip": spec.tta_flip,  # the views its test accuracy was measured with (the trainer's, the spec's)
        "tta_shift": spec.tta_shift,
        "seed_test_accuracies": {str(s): a for s, a in zip(study.seeds, study.test_accuracies, strict=True)},
        "date": datetime.date.today().isoformat(),
    }
    if study.commit and study.commit != "unknown":
        record["commit"] = study.commit
    else:
        record["note"] = "its commit is unknown: its run recorded none (trained outside a git checkout)"
    teacher = str(study.recipe.get("teacher") or "")
    if teacher and study.recipe.get("distill_weight") and study.teacher_sha256:
        record.update(teacher=teacher, teacher_sha256=study.teacher_sha256)
    return record


def _stored_in_float16(source: Path, target: Path, record: dict, data_dir) -> Path:
    """The checkpoint with its floats in half precision, and its test accuracy measured as shipped (in fp32
    arithmetic, as every accuracy): the run's own figure, from its fp32 weights, stays in the record."""
    from zoo.api import evaluate
    from zoo.core.checkpoint import read_checkpoint, save_checkpoint

    tensors, meta = read_checkpoint(source)
    half = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    save_checkpoint(target, half, {**{k: v for k, v in meta.items() if k != "format"}, "stored": "float16"})
    measured = evaluate(weights=target, data_dir=data_dir).accuracy
    record["run_test_accuracy"] = record["metrics"]["test_accuracy"]
    record["metrics"]["test_accuracy"] = measured
    stored = "stored in float16 (half the file); its test accuracy is that of these stored weights"
    record["note"] = f"{record['note']}; {stored}" if record.get("note") else stored
    return target


def markdown_table(studies: list[ModelStudy]) -> str:
    lines = [
        "| model | params | test accuracy, mean ± std (seeds) | shipped weights | published best | must reach | goal | train time / run | hardware |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for study in studies:
        published, must, goal = (f"{v:.1%}" for v in REFERENCE[study.name]) if study.name in REFERENCE else ("—",) * 3
        ok = "✅" if study.name in REFERENCE and study.shipped_accuracy >= REFERENCE[study.name][1] else ""
        lines.append(
            f"| `{study.name}` | {study.params:,} | {study.mean:.2%} ± {study.std:.2%} ({len(study.seeds)}) "
            f"| {study.shipped_accuracy:.2%} {ok} | {published} | {must} | {goal} "
            f"| {statistics.fmean(study.train_seconds):.0f} s | {study.hardware} |"
        )
    return "\n".join(lines) + "\n"


def plot(studies: list[ModelStudy], path: Path) -> bool:
    """Test accuracy versus parameters, FCNs against CNNs, published results as reference points."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for family, colour in (("fcn", "tab:blue"), ("cnn", "tab:orange")):
        members = [s for s in studies if s.family == family and s.name in REFERENCE]
        if not members:
            continue
        params = [s.params for s in members]
        axes.errorbar(params, [100 * s.mean for s in members], yerr=[100 * s.std for s in members], marker="o",
                      color=colour, capsize=3, label=f"zoo {family.upper()} (mean ± std)")  # fmt: skip
        axes.plot(params, [100 * REFERENCE[s.name][0] for s in members], linestyle="--", marker="x", color=colour,
                  alpha=0.6, label=f"published {family.upper()}")  # fmt: skip
        for study in members:
            axes.annotate(f"{statistics.fmean(study.train_seconds):.0f} s", (study.params, 100 * study.mean),
                          textcoords="offset points", xytext=(0, -16), ha="center", fontsize=7, color=colour)  # fmt: skip
    axes.set_xscale("log")
    axes.set_xlabel("parameters")
    axes.set_ylabel("Fashion-MNIST test accuracy (%)")
    axes.set_title("FCN vs CNN at equal parameter budgets (labels: training time per run)", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png"))
    plt.close(figure)
    return True


def model_card(study: ModelStudy, docs_dir: Path | None = None, runs_dir: Path | None = None) -> str:
    info = model_info(study.name)
    spec = get_spec(study.name)
    pre = info["preprocessing"]
    reference = REFERENCE.get(study.name)
    machines = study.run_hardware
    runs = "\n".join(
        f"| {seed} | {'—' if val is None else f'{val:.2%}'} | {test:.2%} | {seconds:.0f} s | {machine} |"
        for seed, val, test, seconds, machine in zip(
            study.seeds, study.val_accuracies, study.test_accuracies, study.train_seconds, machines, strict=True
        )
    )
    # Seeds trained at once share the cores, so their times are only comparable on one kind of run.
    where = f"on {study.hardware}" if len(set(machines)) == 1 else "mean over the runs below, whose hardware differs"
    notes = "".join(f"\nNote: {note}.\n" for note in study.notes)
    return f"""# {study.name}

{spec.description}. Data set: {spec.dataset}. Generated by `zoo study`; do not edit by hand.

| | |
| --- | --- |
| parameters | {study.params:,} (budget {spec.budget:,}) |
| MACs per image | {study.macs:,} |
| test accuracy over {len(study.seeds)} seed{"s" * (len(study.seeds) != 1)} | {study.mean:.2%} ± {study.std:.2%} |
| {"shipped weights" if shipped_weights(study.name) else "not shipped: best run"} (seed {study.best_seed}, {study.chosen_by}) | {study.shipped_accuracy:.2%} test |
| weights tag | {_tag_line(study.name)} |
| published best / must reach / goal | {" / ".join(f"{v:.1%}" for v in reference) if reference else "—"} |
| training time per run | {statistics.fmean(study.train_seconds):.0f} s {where} |
| flip test-time augmentation | {_views(spec)} |
| distillation teacher | {_teacher_line(study.name, study.recipe, study.teacher_sha256)} |
| hyper-parameter sweeps | {_sweep_line(study.name, docs_dir)} |

## Runs

| seed | validation | test | training time | hardware |
| --- | --- | --- | --- | --- |
{runs}
{notes}{_history(study, runs_dir)}
## Recipe

{_recipe_section(study)}

Reproduce: `zoo train {study.name} --seed {study.best_seed}` (add `--set FIELD=VALUE` for any field above that differs
from the registry's recipe).

## Preprocessing

{pre["channels"]} channel(s), {pre["size"][0]}×{pre["size"][1]} pixels, scaled to [0, 1], then `(x - {tuple(pre["mean"])}) / {tuple(pre["std"])}`.
{"Light objects on a dark background, as in Fashion-MNIST." if pre["light_on_dark"] else ""}

## Limitations

Trained on {spec.dataset} only: 28×28 grey product photos on a black background (Fashion-MNIST) or 32×32
CIFAR-10 images. Real photos must be brought to that convention (see `zoo predict`); accuracy on them is not
measured here. Parameter count {count_params(spec.build()):,} is recomputed by the tests.
"""


def _shipped_from(study: ModelStudy) -> ShippedWeights | None:
    """The default weights tag when it was shipped from this study's shipped run (its seed and commit), else None."""
    shipped = shipped_weights(study.name)
    if shipped is None or not shipped.recipe or study.commit is None:
        return None
    return shipped if (shipped.seed, shipped.commit) == (study.best_seed, study.commit) else None


def _recipe_section(study: ModelStudy) -> str:
    """The shipped tag's recipe as its record holds it; the run's own, as its config recorded it, for a run that
    no tag was shipped from."""
    shipped = _shipped_from(study)
    recipe = shipped.recipe if shipped else study.recipe
    fields = ", ".join(f"`{k}={v}`" for k, v in recipe.items())
    return f"`{shipped.name}`, as its record in weights/manifest.json holds it: {fields}" if shipped else fields


def _sweep_line(name: str, docs_dir: Path | None) -> str:
    """The `zoo tune` sweeps of this model published in DOCS/tune/ (NAME.md, NAME-*.md), if any."""
    sweeps = sorted({*docs_dir.glob(f"tune/{name}.md"), *docs_dir.glob(f"tune/{name}-*.md")}) if docs_dir else []
    if not sweeps:
        return "none of its own (see [the sweeps](../tune/index.md))"
    links = []
    for sweep in sweeps:
        generated = next((line for line in sweep.read_text().splitlines() if line.startswith("Generated by")), "")
        command = generated.split("`")[1] if generated.count("`") >= 2 else "zoo tune"
        links.append(f"`{command}` ([tune/{sweep.name}](../tune/{sweep.name}))")
    return "; ".join(links) + ", ranked by validation accuracy"


def _teacher_line(name: str, recipe: dict[str, object], taught_by: str | None = None) -> str:
    """The exact weights that taught a distilled model, by tag: from its run's record of the teacher's sha256,
    else from its shipped weights' record (the manifest), else said to be unknown. An ensemble ("a+b") lists
    each member."""
    if not recipe.get("teacher") or not recipe.get("distill_weight"):
        return "none"
    settings = f"weight {recipe['distill_weight']}, temperature {recipe['distill_temperature']}"
    members = str(recipe["teacher"]).split("+")
    shipped = shipped_weights(name)
    recorded = taught_by or (shipped.teacher_sha256 if shipped else None)
    shas = recorded.split("+") if recorded else []
    lines = [_member_line(m, shas[i] if len(shas) == len(members) else None) for i, m in enumerate(members)]
    ensemble = f"the mean logits of {len(members)}: " if len(members) > 1 else ""
    return f"{ensemble}{'; '.join(lines)}, {settings}"


def _member_line(teacher: str, sha: str | None) -> str:
    teacher, _, path = teacher.partition("=")
    if path:
        return f"`{teacher}` weights {path}"
    model = split_tag(teacher)[0]
    tag = tag_of(model, sha) if sha else None
    if tag is None:
        return f"`{teacher}` (which weights was not recorded)"
    accuracy = shipped_weights(model, tag).metrics.get("test_accuracy")
    return f"`{model}.{tag}` (sha256 {sha[:12]}…, {accuracy:.2%} test)"


def _tag_line(name: str) -> str:
    shipped = shipped_weights(name)
    if shipped is None:
        return "none shipped"
    others = [t for t in tags(name) if t != shipped.tag]
    earlier = f"; earlier tags, still loadable: {', '.join(f'`{name}.{t}`' for t in others)}" if others else ""
    stored = ""
    if shipped.run_test_accuracy is not None:
        stored = f"; stored in float16, {shipped.metrics['test_accuracy']:.2%} test as stored"
    return f"`{shipped.name}` is the default (sha256 {shipped.sha256[:12]}…){stored}{earlier}"


def _views(spec) -> str:
    if not spec.tta_flip:
        return "no"
    return "yes, and both views shifted one pixel up-left and down-right (six views)" if spec.tta_shift else "yes"


def _history(study: ModelStudy, runs_dir: Path | None) -> str:
    """The model's measured history, kept beside its records (RUNS/<model>/history.md), for the card."""
    path = runs_dir / study.name / "history.md" if runs_dir else None
    return f"\n## History\n\n{path.read_text().strip()}\n" if path and path.is_file() else ""


COMPARISON = ("fcn_*", "cnn_*")  # the models of the FCN-vs-CNN table and plot, and run_study's default


def run_study(
    patterns: list[str] | None = None,
    *,
    runs_dir: str | os.PathLike[str] = "docs/runs",
    docs_dir: str | os.PathLike[str] = "docs",
    seeds: list[int] | None = None,
    train: bool = False,
    jobs: int = 1,
    ship_weights: bool = False,
    weights_dir: str | os.PathLike[str] = "weights",
    **train_options: object,
) -> list[ModelStudy]:
    """Train (optionally), aggregate, ship (optionally) and write docs/study.md, docs/study.png, docs/models/*.md."""
    names = []
    for pattern in patterns or COMPARISON:
        matched = list_models(pattern)
        if not matched:
            raise ZooError(f"no model matches {pattern!r}")
        names += [n for n in matched if n not in names]
    runs_dir, docs_dir = Path(runs_dir), Path(docs_dir)
    if train:
        train_seeds(names, seeds or [0, 1, 2], runs_dir, jobs=jobs, **train_options)
    studies = collect(names, runs_dir)
    if not studies:
        raise ZooError(f"no finished runs under {runs_dir}; pass {{train=True}} to train them")
    if ship_weights:
        ship(studies, Path(weights_dir), train_options.get("data_dir"))
    # The table and plot are the whole FCN-vs-CNN comparison, whichever models this call named: re-shipping
    # one model must not drop the others from it. A study of CIFAR-10 models writes their cards alone.
    if any(get_spec(study.name).dataset == "fashion_mnist" for study in studies):
        fashion = collect([n for pattern in COMPARISON for n in list_models(pattern)], runs_dir)
        table = markdown_table(fashion)
        atomic_write(docs_dir / "study.md", lambda tmp: tmp.write_text("# FCN vs CNN on Fashion-MNIST\n\n" + table))
        plot(fashion, docs_dir / "study.png")
    for study in studies:
        card = model_card(study, docs_dir, runs_dir)
        atomic_write(docs_dir / "models" / f"{study.name}.md", lambda tmp, card=card: tmp.write_text(card))
    return studies
