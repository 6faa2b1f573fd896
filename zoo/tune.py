"""`zoo tune`: hyper-parameter and architecture search on Ray Tune.

    zoo tune fcn_50k --samples 16 --max-epochs 60              # Ray starts in this process, on this machine
    zoo tune cnn_10k --address ray://head:10001 --resources-per-trial cpu=2,gpu=0.25   # an existing cluster

Each trial is an ordinary training run (zoo.training.train_model: a run folder with its config, metrics
and checkpoints), reports its validation accuracy after every epoch so that ASHA can stop it
early, and never touches the test set. A candidate architecture is checked against the model's parameter
budget before it trains. The sweep's winner is printed as the `--set` overrides (and, for an architecture,
the registry change) that `zoo study NAME --train --seeds 0,1,2 --set ...` then confirms on three seeds.

Ray is an optional extra (`pip install -e ".[tune]"`, which brings Ray Client too, for ray:// addresses);
starting or joining it is zoo.core.ray_cluster's, which `zoo predict --ray` shares.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from zoo.api import finish_run
from zoo.core.errors import ZooError
from zoo.core.files import atomic_write
from zoo.core.ray_cluster import start_or_join
from zoo.core.recipe import FIELD_NAMES as SETTING_NAMES
from zoo.core.recipe import Recipe
from zoo.core.registry import get_spec
from zoo.core.rundir import RunDir
from zoo.core.spec import ModelSpec

INSTALL_HINT = 'zoo tune needs Ray Tune: pip install -e ".[tune]"  (or: pip install "ray[tune,client]")'
METRIC = "val_accuracy"
# Searched by default: the recipe fields that moved these models most in the hand-made pilots.
DEFAULT_SPACES: dict[str, dict[str, object]] = {
    "fcn": {
        "lr": {"loguniform": [0.03, 0.3]},
        "weight_decay": {"loguniform": [1e-5, 2e-4]},
        "dropout": {"uniform": [0.0, 0.3]},
        "label_smoothing": {"uniform": [0.0, 0.2]},
        "teacher": {"choice": ["cnn_50k", "cnn_100k"]},
        "distill_weight": {"uniform": [0.5, 1.0]},
        "distill_temperature": {"choice": [2.0, 4.0, 6.0]},
    },
    "cnn": {
        "lr": {"loguniform": [0.03, 0.3]},
        "weight_decay": {"loguniform": [1e-4, 2e-3]},
        "label_smoothing": {"uniform": [0.0, 0.2]},
        "crop_padding": {"choice": [1, 2, 3]},
        "teacher": {"choice": ["", "cnn_100k"]},
        "distill_weight": {"uniform": [0.3, 0.9]},
    },
}
ARCHITECTURE_KEY = "widths"  # hidden widths of an MLP (any depth), or the convolutions' channels of a CNN
TRIAL = "trial.json"  # a trial's own record in its run folder: the sampled settings and widths


@dataclass(frozen=True)
class Trial:
    trial_id: str  # Ray Tune's id, also the run folder's name
    settings: dict[str, object]  # the sampled recipe fields (and widths)
    val_accuracy: float  # best validation accuracy over its epochs
    best_epoch: int  # the epoch that reached it
    epochs_run: int  # epochs trained before it finished or ASHA stopped it
    params: int  # parameters of the trained architecture
    run_dir: str  # the ordinary run folder
    completed: bool = True  # trained the whole schedule (False: stopped early by ASHA, or still running)


@dataclass(frozen=True)
class TuneResult:
    model: str
    experiment: str  # the sweep's folder: Ray Tune's state and the trials' run folders
    epochs: int  # the schedule every trial was given (ASHA may stop one earlier)
    trials: list[Trial]  # ranked: trials that trained the whole schedule first, each group by validation accuracy
    overrides: dict[str, object]  # the winner's recipe fields that differ from the registry's recipe
    architecture: list[int] | None  # the winner's widths, where they were searched and differ
    plot: str | None  # PNG of the search, when matplotlib is installed
    failed: list[str] = dataclasses.field(default_factory=list)  # the first line of each failed trial's error

    @property
    def best(self) -> Trial:
        return self.trials[0]

    def varied(self) -> set[str]:
        """The settings whose value differs between trials: the ones worth a column or a plot."""
        return {k for t in self.trials for k in t.settings if len({str(u.settings.get(k)) for u in self.trials}) > 1}

    def confirm_command(self, seeds: str = "0,1,2") -> str:
        sets = " ".join(f"--set {key}={value}" for key, value in self.overrides.items())
        return f"zoo study {self.model} --train --seeds {seeds} --runs-dir runs/confirm {sets}".rstrip()

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model, "experiment": self.experiment, "epochs": self.epochs,
            "trials": [dataclasses.asdict(t) for t in self.trials], "overrides": self.overrides,
            "architecture": self.architecture, "plot": self.plot, "confirm": self.confirm_command(),
            "failed": self.failed,
        }  # fmt: skip


def parse_resources(text: str) -> dict[str, float]:
    """'cpu=1,gpu=0.25' -> {'cpu': 1.0, 'gpu': 0.25}: what each trial reserves on the Ray cluster."""
    resources: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = -1.0
        if not sep or key not in ("cpu", "gpu") or amount < 0:
            raise ZooError(f"--resources-per-trial expects cpu=N,gpu=F (e.g. cpu=1,gpu=0.25), got {text!r}")
        resources[key] = amount
    resources.setdefault("cpu", 1.0)
    if resources["cpu"] <= 0:
        raise ZooError("--resources-per-trial needs at least some cpu (e.g. cpu=1)")
    return resources


def load_space(space: str | os.PathLike[str] | dict | None, spec: ModelSpec) -> dict[str, object]:
    """The search space as plain data: a JSON file's or dict's {field: {"loguniform": [lo, hi]} | ...}, or
    the family's default. Every key must be a recipe field or `widths`; widths are filtered to the budget."""
    if space is None:
        if spec.family not in DEFAULT_SPACES:
            raise ZooError(f"no default search space for {spec.name}; pass --space FILE (see README)")
        space = DEFAULT_SPACES[spec.family]
    elif not isinstance(space, dict):
        path = Path(space)
        try:
            space = json.loads(path.read_text())
        except FileNotFoundError as error:
            raise ZooError(f"search space file not found: {path}", argument="space") from error
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ZooError(f"{path} is not a JSON search space: {error}", argument="space") from error
        if not isinstance(space, dict):
            raise ZooError(f"{path} must hold a JSON object of field: distribution")
    fields = {f.name for f in dataclasses.fields(Recipe)}
    for key, value in space.items():
        if key not in fields and key != ARCHITECTURE_KEY:
            raise ZooError(f"unknown search-space key {key!r}: a recipe field or {ARCHITECTURE_KEY!r}")
        if key in ("seed", "split_seed", "val_size"):
            raise ZooError(f"{key} is fixed in a search: trials must compare on one validation split")
        if key == "epochs":
            raise ZooError("epochs is the schedule every trial gets: set it with --max-epochs, not in the space")
        if isinstance(value, dict):
            if len(value) != 1 or next(iter(value)) not in _DISTRIBUTIONS:
                raise ZooError(f"{key}: expected one of {', '.join(_DISTRIBUTIONS)}, got {value!r}")
    if ARCHITECTURE_KEY in space:
        space = {**space, ARCHITECTURE_KEY: _widths_within_budget(space[ARCHITECTURE_KEY], spec)}
    return space


_DISTRIBUTIONS = ("uniform", "loguniform", "choice", "randint")


def _to_ray(space: dict[str, object]) -> dict[str, object]:
    from ray import tune

    converted = {}
    for key, value in space.items():
        if isinstance(value, dict):
            (kind, args), = value.items()  # fmt: skip
            if kind == "choice":
                converted[key] = tune.choice(list(args))
            else:
                converted[key] = getattr(tune, kind)(*args)
        else:
            converted[key] = value
    return converted


def arch_for(spec: ModelSpec, widths: list[int] | tuple[int, ...]) -> dict[str, object]:
    """The builder arguments of a `widths` candidate: an MLP's hidden widths (their count is its depth) or a
    CNN's convolution channels (one per convolution of its plan). A model whose builder takes no widths, or a
    candidate of the wrong length for a CNN, is a ZooError."""
    registered = spec.arch.get(ARCHITECTURE_KEY)
    widths = tuple(int(w) for w in widths)
    if registered is None or any(w < 1 for w in widths):
        raise ZooError(f"{spec.name} takes no {ARCHITECTURE_KEY} (its builder has none), or bad widths {list(widths)}")
    if spec.family == "cnn" and len(widths) != len(registered):
        raise ZooError(f"{spec.name} has {len(registered)} convolutions; widths {list(widths)} gives {len(widths)}")
    return {ARCHITECTURE_KEY: widths}


def spec_widths(spec: ModelSpec) -> list[int] | None:
    """The registered architecture as `widths`, or None for a builder that takes none."""
    registered = spec.arch.get(ARCHITECTURE_KEY)
    return list(registered) if registered is not None else None


def budget_check(spec: ModelSpec, arch: dict[str, object] | None = None) -> int:
    """The parameters of spec's architecture (changed by `arch`); a ZooError unless they lie in its allowed range."""
    from zoo.core.summary import count_params

    params = count_params(spec.build(**(arch or {})))
    if not spec.min_params <= params <= spec.budget:
        raise ZooError(f"{params:,} parameters: outside {spec.name}'s range {spec.min_params:,}-{spec.budget:,}")
    return params


def _widths_within_budget(value: object, spec: ModelSpec) -> object:
    options = value["choice"] if isinstance(value, dict) and "choice" in value else [value]
    if isinstance(value, dict) and set(value) != {"choice"}:
        raise ZooError(f"{ARCHITECTURE_KEY}: give a list or {{'choice': [[...], ...]}} of widths lists")
    kept = []
    for widths in options:
        try:
            budget_check(spec, arch_for(spec, widths))
            kept.append(list(widths))
        except ZooError:
            continue
    if not kept:
        raise ZooError(f"none of the {ARCHITECTURE_KEY} candidates fits {spec.name}'s budget of {spec.budget:,}")
    return {"choice": kept}


def _consistent(recipe: Recipe) -> Recipe:
    """Distillation needs both a teacher and a weight: a sample with one but not the other trains without."""
    if not recipe.teacher or not recipe.distill_weight:
        return recipe.replace(teacher="", distill_weight=0.0)
    return recipe


def _run_trial(config: dict[str, object], *, name: str, epochs: int, root: str, data_dir: str | None,
               limit_train: int | None, threads: int, device: str) -> None:  # fmt: skip
    """One Ray Tune trial: an ordinary zoo training run in <root>/<trial_id>, resumed where it stopped."""
    import torch
    from ray import tune

    torch.set_num_threads(threads)
    spec = get_spec(name)
    settings = dict(config)
    widths = settings.pop(ARCHITECTURE_KEY, None)
    arch = arch_for(spec, widths) if widths is not None else {}
    budget_check(spec, arch)  # never train a candidate beyond the budget, whatever the space said
    recipe = _consistent(spec.recipe.replace(**settings, epochs=epochs))
    run = RunDir(Path(root) / tune.get_context().get_trial_id())
    run.write_record(TRIAL, {"settings": config, "widths": widths or spec_widths(spec), "model": name})

    def report(record: dict[str, object]) -> None:
        tune.report({METRIC: record["val_accuracy"], "epoch": record["epoch"], "train_loss": record["train_loss"]})

    finish_run(name, run.path, data_dir=data_dir, device=device, limit_train=limit_train, progress=False,
               on_epoch=report, measure_test=False, arch=arch or None, **recipe.to_dict())  # fmt: skip


def tune_model(
    name: str,
    *,
    samples: int = 8,
    space: str | os.PathLike[str] | dict | None = None,
    max_epochs: int | None = None,
    scheduler: str = "asha",
    address: str | None = None,
    resources: str | dict[str, float] = "cpu=1,gpu=0",
    data_dir: str | os.PathLike[str] | None = None,
    limit_train: int | None = None,
    out: str | os.PathLike[str] = "runs/tune",
    experiment: str | None = None,
    seed: int = 0,
    max_concurrent: int | None = None,
) -> TuneResult:
    """Search `name`'s recipe (and widths) on Ray Tune; rerunning an interrupted sweep resumes it."""
    try:
        import ray
        from ray import tune
    except ImportError as error:
        raise ZooError(INSTALL_HINT) from error
    spec = get_spec(name)
    if samples < 1:
        raise ZooError(f"samples must be at least 1, got {samples}")
    if max_concurrent is not None and max_concurrent < 1:
        raise ZooError(f"max_concurrent must be at least 1, got {max_concurrent}")
    if scheduler not in ("asha", "fifo"):
        raise ZooError(f"unknown scheduler {scheduler!r}; use asha or fifo")
    epochs = max_epochs or spec.recipe.epochs
    if epochs < 1:
        raise ZooError(f"max_epochs must be at least 1, got {epochs}")
    per_trial = parse_resources(resources) if isinstance(resources, str) else dict(resources)
    space = load_space(space, spec)
    experiment_dir = (Path(out) / (experiment or name)).resolve()
    # The settings a sweep was started with; a rerun with other settings would silently resume the old one.
    settings = {"model": name, "samples": samples, "space": space, "epochs": epochs, "scheduler": scheduler,
                "limit_train": limit_train, "seed": seed}  # fmt: skip
    settings_file = experiment_dir / "sweep.json"
    if settings_file.is_file() and json.loads(settings_file.read_text()) != settings:
        raise ZooError(f"{experiment_dir} holds a sweep with other settings; pass another experiment name (--name)")
    experiment_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(settings_file, lambda tmp: tmp.write_text(json.dumps(settings, indent=2) + "\n"))
    if data_dir is None and os.environ.get("ZOO_DATA"):
        data_dir = os.environ["ZOO_DATA"]
    use_gpu = per_trial.get("gpu", 0) > 0
    trainable = tune.with_resources(
        functools.partial(
            _run_trial, name=name, epochs=epochs, root=str(experiment_dir / "runs"),
            data_dir=str(Path(data_dir).resolve()) if data_dir else None, limit_train=limit_train,
            threads=max(1, math.floor(per_trial["cpu"])), device="cuda" if use_gpu else "cpu",
        ),
        per_trial,
    )  # fmt: skip
    started_ray = start_or_join(address, extra="tune")
    try:
        tuner = _tuner(trainable, experiment_dir, space, samples, epochs, scheduler, seed, max_concurrent)
        # Ray's progress goes to stderr, so stdout holds only zoo's table (or its one JSON document).
        with contextlib.redirect_stdout(sys.stderr):
            grid = tuner.fit()
    finally:
        if started_ray:
            ray.shutdown()
    errors = [r.error for r in grid if r.error is not None]
    trials = collect_trials(experiment_dir / "runs")
    if not trials:
        raise ZooError(f"no trial finished an epoch: {errors[0] if errors else 'see ' + str(experiment_dir)}")
    result = _result(spec, str(experiment_dir), epochs, trials)
    failed = [str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__ for error in errors]
    plotted = plot_search(result, experiment_dir / "search.png")
    return dataclasses.replace(result, plot=str(experiment_dir / "search.png") if plotted else None, failed=failed)


def _tuner(trainable, experiment_dir: Path, space, samples, epochs, scheduler, seed, max_concurrent):
    """Ray Tune's Tuner for the sweep: restored where an earlier run of it left state, else a new one."""
    from ray import tune

    tune_dir = experiment_dir / "ray"
    if tune.Tuner.can_restore(str(tune_dir)):
        return tune.Tuner.restore(str(tune_dir), trainable, resume_unfinished=True, resume_errored=True)
    asha = tune.schedulers.ASHAScheduler(
        time_attr="epoch", max_t=epochs, grace_period=max(1, epochs // 8), reduction_factor=3
    )
    return tune.Tuner(
        trainable,
        param_space=_to_ray(space),
        tune_config=tune.TuneConfig(
            metric=METRIC, mode="max", num_samples=samples,
            scheduler=asha if scheduler == "asha" else tune.schedulers.FIFOScheduler(),
            # max_concurrent: a cap below what the resources allow, for a machine shared with other
            # work (TuneConfig's max_concurrent_trials is ignored once a search algorithm is given).
            search_alg=tune.search.BasicVariantGenerator(random_state=seed, max_concurrent=max_concurrent or 0),
        ),
        run_config=tune.RunConfig(name="ray", storage_path=str(experiment_dir), verbose=0),
    )  # fmt: skip


def collect_trials(runs_dir: Path) -> list[Trial]:
    """Every trial's record from its ordinary run folder, ranked (see TuneResult.trials)."""
    from zoo.core.summary import count_params

    trials = []
    for folder in sorted(runs_dir.glob("*")):
        run = RunDir(folder)
        trial, records = run.record(TRIAL), run.metrics()
        if trial is None or not records:
            continue
        best = max(records, key=lambda r: r["val_accuracy"])
        config = run.config()
        params = config.get("params") or count_params(get_spec(trial["model"]).build())
        completed = len(records) >= config["recipe"]["epochs"]
        trials.append(Trial(folder.name, trial["settings"], best["val_accuracy"], best["epoch"], len(records),
                            params, str(folder), completed))  # fmt: skip
    # A stopped trial's best epoch came while its learning rate was still high: not comparable with a
    # finished schedule, however good it looked, so finished trials rank first and the winner is one of them.
    return sorted(trials, key=lambda t: (not t.completed, -t.val_accuracy))


def _result(spec: ModelSpec, experiment: str, epochs: int, trials: list[Trial]) -> TuneResult:
    best = trials[0].settings
    fields = {k: _rounded(v) for k, v in best.items() if k != ARCHITECTURE_KEY}
    winner = _consistent(spec.recipe.replace(**fields, epochs=epochs)).to_dict()
    overrides = {k: v for k, v in winner.items() if getattr(spec.recipe, k) != v}
    widths = best.get(ARCHITECTURE_KEY)
    architecture = list(widths) if widths is not None and list(widths) != spec_widths(spec) else None
    return TuneResult(spec.name, experiment, epochs, trials, overrides, architecture, None)


def publish(result: TuneResult, docs_dir: str | os.PathLike[str], command: str) -> Path:
    """Write the sweep where it is committed, under its name (the model's by default): DOCS/SWEEP.md (the
    ranked table and the winner's --set line), DOCS/SWEEP.png (the plot) and each trial's run records
    (config, metrics, settings; no checkpoints) in DOCS/SWEEP/."""
    import shutil

    docs = Path(docs_dir)
    sweep = Path(result.experiment).name
    records = docs / sweep
    if records.is_dir():
        shutil.rmtree(records)
    for trial in result.trials:
        RunDir(trial.run_dir).copy_records(records / trial.trial_id, extra=(TRIAL,))
    if result.plot:
        shutil.copyfile(result.plot, docs / f"{sweep}.png")
    keys = sorted(result.varied())
    lines = [
        f"# zoo tune {result.model}: sweep {sweep}", "",
        f"Generated by `{command}`; validation accuracy only (no trial saw the test set). "
        f"{len(result.trials)} trials on a {result.epochs}-epoch schedule, ASHA stopping weak ones early; "
        f"each trial's records are in `{sweep}/`.", "",
        "| rank | trial | validation | epochs | " + " | ".join(keys) + " |",
        "| ---: | --- | ---: | ---: | " + " | ".join("---" for _ in keys) + " |",
    ]  # fmt: skip
    for rank, trial in enumerate(result.trials, 1):
        cells = " | ".join(format_setting(trial.settings.get(k)) for k in keys)
        lines.append(
            f"| {rank} | {trial.trial_id} | {trial.val_accuracy:.2%} | {trial.epochs_run}/{result.epochs} | {cells} |"
        )
    lines += ["", f"Winner, to confirm on three seeds: `{result.confirm_command()}`"]
    widths = result.best.settings.get(ARCHITECTURE_KEY)
    if widths is not None:
        change = "a registry change to make" if result.architecture else "as registered now"
        lines.append(f"with widths {format_setting(widths)} ({change}).")
    lines += ["", f"![search]({sweep}.png)", ""]
    path = docs / f"{sweep}.md"
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(lines)))
    return path


def format_setting(value: object) -> str:
    """A sampled setting as a table shows it: floats to 3 figures, widths joined with dashes."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list | tuple):
        return "-".join(map(str, value))
    return "—" if value in ("", None) else str(value)


def _rounded(value: object) -> object:
    """Sampled floats to 3 significant figures: the `--set` line a person can read and type."""
    return float(f"{value:.3g}") if isinstance(value, float) else value


def plot_search(result: TuneResult, path: Path) -> bool:
    """Left: every trial's validation accuracy per epoch (ASHA's early stops show as short curves).
    Right: each searched field against the trial's best validation accuracy."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return False
    varied = {k for k in result.varied()
              if all(isinstance(t.settings.get(k), int | float) and not isinstance(t.settings.get(k), bool)
                     for t in result.trials)}  # fmt: skip
    first = ("lr", "weight_decay", "ema_decay", "distill_weight")  # the usual suspects, then the rest by name
    numeric = [k for k in first if k in varied] + sorted(varied - set(first))
    columns = 1 + min(len(numeric), 3)
    figure, axes = plt.subplots(1, columns, figsize=(4.2 * columns, 3.8), dpi=110, squeeze=False)
    curves = axes[0][0]
    for rank, trial in enumerate(reversed(result.trials)):
        records = RunDir(trial.run_dir).metrics()
        is_best = rank == len(result.trials) - 1
        curves.plot([r["epoch"] for r in records], [100 * r["val_accuracy"] for r in records],
                    color="tab:red" if is_best else "tab:blue", alpha=1.0 if is_best else 0.35,
                    linewidth=2 if is_best else 1, label="winner" if is_best else None)  # fmt: skip
    curves.set_xlabel("epoch")
    curves.set_ylabel("validation accuracy (%)")
    top = [100 * t.val_accuracy for t in result.trials]
    best_score = max(t.val_accuracy for t in result.trials)
    curves.set_ylim(min(top) - 1, 100 * best_score + 0.6)  # every trial's best in view, stopped ones too
    curves.set_title(f"{result.model}: {len(result.trials)} trials, {result.epochs}-epoch schedule", fontsize=9)
    curves.grid(alpha=0.3)
    curves.legend(fontsize=8, loc="lower right")
    for axis, key in zip(axes[0][1:], numeric[:3], strict=False):
        values = [t.settings.get(key) for t in result.trials]
        full = [t.completed for t in result.trials]
        colours = ["tab:red" if i == 0 else "tab:blue" for i in range(len(values))]
        # Filled: trained the whole schedule; hollow: stopped early by ASHA.
        axis.scatter(values, top, s=22, c=[c if f else "none" for c, f in zip(colours, full, strict=True)],
                     edgecolors=colours)  # fmt: skip
        if key in ("lr", "weight_decay"):
            axis.set_xscale("log")
            # Labelled ticks at 1, 2 and 5 of each decade, more where the search spans less than one.
            span = math.log10(max(values) / min(values)) if min(values) > 0 else 1.0
            subs = (1.0, 2.0, 5.0) if span > 0.7 else (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
            axis.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=subs))
            axis.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            axis.tick_params(axis="x", labelrotation=30, labelsize=8)
        axis.set_xlabel(SETTING_NAMES.get(key, key))
        axis.set_ylim(curves.get_ylim())
        axis.grid(alpha=0.3)
        axis.set_title(f"best validation vs {SETTING_NAMES.get(key, key)} (hollow: stopped early)", fontsize=9)
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png"))
    plt.close(figure)
    return True
