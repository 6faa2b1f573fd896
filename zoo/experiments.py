"""The studies' comparisons as reproducible experiments: `zoo experiment NAME [--train]`.

An experiment is a list of variants (a model, a recipe, optionally a smaller training set), each one
ordinary training run. Runs live in docs/experiments/runs/<model>/<key>/ (config, metrics, report; the
checkpoints are not committed), keyed by everything that defines them, so experiments that share a
variant share its run and a finished run is never trained twice. Each experiment writes a Markdown
table and a plot to docs/experiments/<name>.{md,png}; the reference networks' table is docs/reference.md.

    zoo experiment reference --train        # the studies' networks, their recipe vs zoo's
    zoo experiment train-size-cifar --train # accuracy vs training-set size
    zoo experiment all --train              # everything, about an hour on a 2-core CPU
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from zoo.api import finish_run
from zoo.core.data import load_dataset, train_val_split
from zoo.core.device import resolve_device
from zoo.core.errors import ZooError
from zoo.core.files import atomic_write
from zoo.core.loading import Classifier, load_model
from zoo.core.models.reference import REFERENCE_MODELS, STUDY_RECIPES
from zoo.core.numbers import fraction
from zoo.core.preprocess import predict_logits
from zoo.core.recipe import Recipe
from zoo.core.registry import get_spec
from zoo.core.rundir import RunDir
from zoo.core.weights import shipped_weights
from zoo.insight import pyplot, save_png

_DATA_SET_NAMES = {"cifar10": "CIFAR-10 (JPEG test set)", "fashion_mnist": "Fashion-MNIST (10,000 test images)"}
AUGMENT = {"crop_padding": 4, "hflip": True}  # the studies' "with augmentation": shifts and mirrors


@dataclass(frozen=True)
class Variant:
    label: str  # row label in tables and plots
    model: str  # registry name
    recipe: str = "zoo"  # "zoo" (the registry's recipe) or "study" (the model's study recipe)
    overrides: dict[str, object] = field(default_factory=dict)  # recipe fields changed on top
    limit_train: int | None = None  # train on the first N (shuffled) training images

    def resolved_recipe(self) -> Recipe:
        base = STUDY_RECIPES[self.model] if self.recipe == "study" else get_spec(self.model).recipe
        recipe = base.replace(**self.overrides)
        if self.limit_train:
            # Small sets get more epochs, so every size trains for at least ~300 steps.
            steps = math.ceil(self.limit_train / recipe.batch_size)
            recipe = recipe.replace(epochs=max(recipe.epochs, min(1000, math.ceil(300 / steps))))
        return recipe

    def seeded(self, seed: int) -> Variant:
        """The same variant trained from another seed (itself for the recipe's own seed, so its key stays)."""
        if seed == self.resolved_recipe().seed:
            return self
        return dataclasses.replace(self, overrides={**self.overrides, "seed": seed})

    def run_dir(self, runs_dir: Path) -> Path:
        return runs_dir / self.model / self.key()

    def key(self) -> str:
        """Folder name: what the run is, readable, plus a hash of everything that defines it. The recipe
        enters as its changes from the Recipe defaults, so a field added later (off by default) leaves every
        earlier run's key, and so its reuse, as it was."""
        definition = json.dumps(
            {"model": self.model, "recipe": self.resolved_recipe().changes(), "limit_train": self.limit_train},
            sort_keys=True,
        )
        size = f"-n{self.limit_train}" if self.limit_train else ""
        return f"{self.recipe}{size}-{hashlib.sha256(definition.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    variants: tuple[Variant, ...]
    question: str  # what the experiment answers, one line for the docs
    sizes: bool = False  # variants differ by training-set size: plot accuracy against it
    ablation: bool = False  # variants remove one mechanism each from the first: table the differences
    # Each variant trained from each of these seeds; with more than one, the table gives means and spreads,
    # since differences of a few tenths of a point between single runs are within seed noise.
    seeds: tuple[int, ...] = (0,)


def tag_recipe(name: str) -> dict[str, object]:
    """The recipe that trained the weights `MODEL.TAG`, from their record in the manifest, without its seed: a
    variant on it trains from each of its experiment's seeds. Variants on a shipped tag's recipe keep it whatever
    the registry's recipe becomes, and so the keys their committed runs are stored under."""
    recipe = dict(shipped_weights(name).recipe)
    del recipe["seed"]
    return recipe


# airbench's recipe at 10 epochs (its own length; warm-up 23% of it, its ±2-pixel crops, no erasing), and
# without one mechanism at a time, each run keeping zoo's 5,000 validation images (the registry's
# cifar_cnn_best recipe holds none out).
AIRBENCH_10 = {"epochs": 10, "warmup_epochs": 2.3, "crop_padding": 2, "erasing": 0.0, "val_size": 5000}
ABLATIONS = (
    ("whitened stem: off (a trained 2x2 stem)", {"whiten_stem": False}),
    ("identity init: off", {"dirac_init": False}),
    ("frozen batch-norm scales: off", {"freeze_bn_scale": False}),
    ("batch-norm shifts at 64x lr: off (timm's groups: not decayed)", {"bias_lr_scale": 1.0}),
    ("lookahead: off", {"lookahead": False}),
    ("alternating flips: off (random flips)", {"alternating_flip": False}),
    ("reflected crops: off (zero padding)", {"crop_reflect": False}),
    ("triangular schedule: off (timm's cosine)", {"lr_schedule": "cosine"}),
)


# Teachers for the MLPs, by weights tag (a tag always means the same weights): none, the one that taught
# fcn_50k.v1 and fcn_200k.v1, and the shipped CNNs since; then the strongest one on shifted views.
TEACHERS = (
    ("no teacher", {"teacher": "", "distill_weight": 0.0, "crop_padding": 0}),
    ("cnn_50k.v1", {"teacher": "cnn_50k.v1", "distill_weight": 0.9, "crop_padding": 0}),
    ("cnn_50k.v2", {"teacher": "cnn_50k.v2", "distill_weight": 0.9, "crop_padding": 0}),
    ("cnn_100k.v2", {"teacher": "cnn_100k.v2", "distill_weight": 0.9, "crop_padding": 0}),
    # Shifted views, each with the teacher's own answer for it: crops hurt an MLP on hard labels, but a
    # teacher that labels every view consistently turns them into more distinct examples to match.
    ("cnn_100k.v2, ±1-pixel crops taught", {"teacher": "cnn_100k.v2", "distill_weight": 0.9, "crop_padding": 1}),
    # The strongest CNN shipped since (its card has the figures): does a better cnn_100k teach better?
    ("cnn_100k.v3, ±1-pixel crops taught", {"teacher": "cnn_100k.v3", "distill_weight": 0.9, "crop_padding": 1}),
)


# Over twice fcn_50k.v2's schedule, with and without an EMA of the weights: the lever that lifted every CNN,
# tried on the smallest MLP. Its first row is the same run as fcn-teachers' taught-crops row.
FCN_SCHEDULES = (
    ("150 epochs (fcn_50k.v2's recipe)", {}),
    ("300 epochs", {"epochs": 300}),
    ("300 epochs, weight EMA 0.998", {"epochs": 300, "ema_decay": 0.998}),
    ("600 epochs", {"epochs": 600}),
)

# The wider MLPs' recipes when fcn_50k moved to 300 epochs (fcn_100k.v2's tuned one, fcn_200k.v2's the distilled
# one): does doubling their 150 epochs lift them as it lifted fcn_50k?
FCN_LONG = tuple(
    Variant(f"{model}, {label}", model, overrides={**tag_recipe(f"{model}.v2"), **change})
    for model in ("fcn_100k", "fcn_200k")
    for label, change in ((f"150 epochs ({model}.v2's recipe)", {}), ("300 epochs", {"epochs": 300}))
)


# The Fashion-MNIST CNN experiments train on cnn_10k.v1's recipe (the tuned CNN recipe, 50 epochs), the registry's
# until the CNNs moved to 100 epochs with a weight EMA, or on cnn_100k.v3's (that move): the one lever the CNN
# recipes never tried there is random erasing, a regulariser for a network that fits its crops far better than it
# generalises (cnn_100k.v3: about 97.5% on its augmented batches, 94.4% on validation); cnn_100k.v4 added it.
# The teacher of cnn-ensemble-teacher: the shipped CNNs whose mean logits scored best on validation.
ENSEMBLE_TEACHER = "cnn_100k.v4+cnn_100k.v3+cnn_50k.v3"
CNN_100K_TAUGHT = {**tag_recipe("cnn_100k.v3"), "teacher": ENSEMBLE_TEACHER, "distill_weight": 0.5}


def _on_fcn_50k_v2(changes: tuple[tuple[str, dict[str, object]], ...]) -> tuple[Variant, ...]:
    """One fcn_50k variant per (label, recipe change), each on fcn_50k.v2's recipe (150 epochs, taught by
    cnn_100k.v2 on ±1-pixel crops), which the MLP experiments trained with, the registry's until fcn_50k moved to
    300 epochs."""
    recipe = tag_recipe("fcn_50k.v2")
    return tuple(Variant(label, "fcn_50k", overrides={**recipe, **change}) for label, change in changes)


def _sizes(model: str, sizes: tuple[int, ...], full: int, **overrides: object) -> tuple[Variant, ...]:
    return tuple(
        Variant(f"{n:,}", model, overrides=dict(overrides), limit_train=None if n == full else n) for n in sizes
    )


EXPERIMENTS = {
    e.name: e
    for e in (
        Experiment(
            "reference",
            "The studies' networks: their recipe and zoo's",
            tuple(
                Variant(f"{name} ({recipe} recipe)", name, recipe)
                for name in ("ref_keras_cnn", "ref_3block_cnn", "ref_lenet_bn")
                for recipe in ("study", "zoo")
            ),
            "Do the reproduced networks land near the reported figures, and what does zoo's training add?",
        ),
        Experiment(
            "stride-vs-maxpool",
            "Downsampling: stride-2 convolutions or max-pooling (Keras CNN, study recipe)",
            (
                Variant("stride 2", "ref_keras_cnn", "study"),
                Variant("max-pool", "ref_keras_pool", "study"),
            ),
            "Same 37,146 parameters; the study reported about 70% with strides and 74% with max-pooling.",
        ),
        Experiment(
            "relu-vs-silu",
            "Activation: ReLU or SiLU (LeNet with BN, study recipe with augmentation)",
            (
                Variant("ReLU", "ref_lenet_bn", "study", AUGMENT),
                Variant("SiLU", "ref_lenet_silu", "study", AUGMENT),
            ),
            "The study reported 72% with ReLU and 73.2% with SiLU, both with augmentation.",
        ),
        Experiment(
            "augmentation",
            "Augmentation on or off (LeNet with BN, study recipe)",
            (
                Variant("off", "ref_lenet_bn", "study"),
                Variant("crop ±4 + flip", "ref_lenet_bn", "study", AUGMENT),
            ),
            "The study reported about 66% without augmentation and 72% with it.",
        ),
        Experiment(
            "train-size-cifar",
            "Accuracy vs training-set size, CIFAR-10 (LeNet with BN, zoo recipe)",
            _sizes("ref_lenet_bn", (10, 100, 1_000, 10_000, 45_000), 45_000),
            "How accuracy and the train-test gap change from 10 to all 45,000 training images.",
            sizes=True,
        ),
        Experiment(
            "airbench-ablation",
            "airbench's mechanisms in zoo's engine, one removed at a time (cifar_cnn_best, 10 epochs)",
            (
                Variant("all of airbench94's recipe", "cifar_cnn_best", overrides=AIRBENCH_10),
                *(Variant(label, "cifar_cnn_best", overrides={**AIRBENCH_10, **change}) for label, change in ABLATIONS),
            ),
            "What each mechanism is worth on the JPEG set, at airbench94's own 10 epochs, measured by the one engine.",
            ablation=True,
        ),
        Experiment(
            "fcn-teachers",
            "Distillation teachers for fcn_50k (fcn_50k.v2's recipe otherwise, 150 epochs)",
            _on_fcn_50k_v2(TEACHERS),
            "Does a stronger or a newer CNN teach the smallest MLP better? fcn_50k.v1 was taught by cnn_50k.v1.",
            seeds=(0, 1, 2),
        ),
        Experiment(
            "fcn-schedule",
            "Longer schedules and weight EMA for fcn_50k (fcn_50k.v2's recipe otherwise)",
            _on_fcn_50k_v2(FCN_SCHEDULES),
            "Does a longer schedule, with or without the weight EMA that lifted every CNN, lift the smallest MLP too?",
            seeds=(0, 1, 2),
        ),
        Experiment(
            "fcn-long",
            "300 epochs for fcn_100k and fcn_200k (their v2 recipes otherwise)",
            FCN_LONG,
            "Does twice the schedule, which lifted fcn_50k, lift the wider MLPs too? Chosen per model.",
            seeds=(0, 1, 2),
        ),
        Experiment(
            "cnn-teachers",
            "Distillation for the smallest CNN: cnn_10k taught by the shipped cnn_100k (cnn_10k.v1's recipe otherwise)",
            (
                Variant("no teacher (cnn_10k.v1's recipe)", "cnn_10k", overrides=tag_recipe("cnn_10k.v1")),
                Variant(
                    "cnn_100k.v2, weight 0.9",
                    "cnn_10k",
                    overrides={**tag_recipe("cnn_10k.v1"), "teacher": "cnn_100k.v2", "distill_weight": 0.9},
                ),
            ),
            "Does the tuned CNN recipe gain from a teacher ten times its size (every crop's view taught)? The runs "
            "without a teacher are the three seeds of cnn_10k.v1: the same recipe and seeds.",
            seeds=(0, 1, 2),
        ),
        Experiment(
            "cnn-erasing",
            "Random erasing for cnn_100k (cnn_100k.v3's recipe otherwise, 100 epochs)",
            (
                Variant("no erasing (cnn_100k.v3's recipe)", "cnn_100k", overrides=tag_recipe("cnn_100k.v3")),
                Variant("random erasing, p = 0.5", "cnn_100k", overrides=tag_recipe("cnn_100k.v4")),
            ),
            "Does random erasing (p = 0.5, as its paper used on Fashion-MNIST) close the gap between what the largest "
            "CNN fits and what it generalises to? The runs without it are cnn_100k.v3's three seeds.",
            seeds=(0, 1, 2),
        ),
        Experiment(
            "cnn-ensemble-teacher",
            "An ensemble teacher for cnn_100k (cnn_100k.v3's recipe otherwise, 100 epochs)",
            (
                Variant("no teacher (cnn_100k.v3's recipe)", "cnn_100k", overrides=tag_recipe("cnn_100k.v3")),
                Variant(
                    "random erasing, p = 0.5 (cnn_100k.v4's recipe)", "cnn_100k", overrides=tag_recipe("cnn_100k.v4")
                ),
                Variant(
                    f"taught by {ENSEMBLE_TEACHER.replace('+', ' + ')}, weight 0.5",
                    "cnn_100k",
                    overrides=CNN_100K_TAUGHT,
                ),
            ),
            "Does the mean of several shipped CNNs, better on validation than any one of them, teach the largest CNN "
            "past what it learns from labels (every crop's view taught)? The taught runs keep cnn_100k.v3's recipe, "
            "so each row changes one thing; the first two rows are the runs of cnn-erasing.",
            seeds=(0, 1, 2),
        ),
        Experiment(
            "cnn-teacher-erasing",
            "Ensemble teacher and random erasing together for cnn_100k (100 epochs)",
            (
                Variant(
                    "random erasing, p = 0.5 (cnn_100k.v4's recipe)", "cnn_100k", overrides=tag_recipe("cnn_100k.v4")
                ),
                Variant("ensemble teacher, weight 0.5", "cnn_100k", overrides=CNN_100K_TAUGHT),
                Variant(
                    "both: ensemble teacher + random erasing", "cnn_100k", overrides={**CNN_100K_TAUGHT, "erasing": 0.5}
                ),
            ),
            "Erasing and the ensemble teacher tied on validation in cnn-ensemble-teacher; do they add up? The teacher "
            "labels the whole view and the student sees it with a patch erased. The first two rows are the runs of "
            "cnn-ensemble-teacher.",
            seeds=(0, 1, 2),
        ),
        Experiment(
            "train-size-fashion-mnist",
            "Accuracy vs training-set size, Fashion-MNIST (cnn_10k, zoo recipe, 15 epochs at full size)",
            _sizes("cnn_10k", (10, 100, 1_000, 10_000, 55_000), 55_000, **{**tag_recipe("cnn_10k.v1"), "epochs": 15}),
            "How accuracy and the train-test gap change from 10 to all 55,000 training images.",
            sizes=True,
        ),
    )
}


@dataclass(frozen=True)
class Row:
    label: str
    model: str
    recipe: str
    train_images: int
    params: int
    epochs: int
    train_accuracy: float | None  # of the kept weights on their training images, unaugmented (None: not measured)
    val_accuracy: float  # best epoch
    test_accuracy: float  # of the best-validation weights
    train_seconds: float
    run: str  # folder
    images_per_second: float | None = None  # training throughput
    test_accuracy_flip: float | None = None  # of the same weights with the image and its mirror only (ablations)
    seed: int = 0
    hardware: str = "unknown"  # the machine that trained the run (its config's record)

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def names() -> list[str]:
    return list(EXPERIMENTS)


def run_experiment(
    name: str,
    *,
    docs_dir: str | os.PathLike[str] = "docs",
    train: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
) -> list[Row]:
    """Train the experiment's missing runs (with train=True), then write its table and plot."""
    if name not in EXPERIMENTS:
        raise ZooError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}, all", argument="name")
    experiment = EXPERIMENTS[name]
    runs_dir = Path(docs_dir) / "experiments" / "runs"
    rows = []
    for variant in (v.seeded(seed) for v in experiment.variants for seed in experiment.seeds):
        run_dir = variant.run_dir(runs_dir)
        if train:
            _train(variant, run_dir, data_dir, device)
        if experiment.ablation:
            _measure_flip_only(run_dir, data_dir, device)
        else:
            _measure_train_accuracy(variant, run_dir, data_dir, device)
        rows.append(_row(variant, run_dir))
    finished = [row for row in rows if row is not None]
    if not finished:
        raise ZooError(f"experiment {name!r} has no finished run in {runs_dir}: run it with {{train=True}}")
    out = Path(docs_dir) / "experiments"
    text = writer(experiment)(experiment, finished, len(rows))
    atomic_write(out / f"{name}.md", lambda tmp: tmp.write_text(text))
    plot(experiment, finished, out / f"{name}.png")
    if name == "reference":
        atomic_write(Path(docs_dir) / "reference.md", lambda tmp: tmp.write_text(reference_table(finished)))
    return finished


def writer(experiment: Experiment):
    """The function that writes this experiment's Markdown table."""
    return seeds_markdown if len(experiment.seeds) > 1 else ablation_markdown if experiment.ablation else markdown


def _train(variant: Variant, run_dir: Path, data_dir, device) -> None:
    """Train the variant's run unless it finished; an interrupted one is resumed."""
    finish_run(variant.model, run_dir, data_dir=data_dir, device=device, limit_train=variant.limit_train,
               **variant.resolved_recipe().to_dict())  # fmt: skip


TRAIN_EVAL = "train_accuracy.json"


def _measure_train_accuracy(variant: Variant, run_dir: Path, data_dir, device) -> None:
    """Accuracy of the kept (best-validation) weights on the very images they trained on, unaugmented,
    measured as zoo measures test accuracy; written once beside the run's report (the checkpoint itself is
    not committed, the figure is). The running accuracy of the last epoch's augmented batches is no
    train accuracy for such a comparison: augmentation and dropout lower it below the test figure."""
    run = RunDir(run_dir)
    if run.record(TRAIN_EVAL) is not None or not run.best_checkpoint.is_file() or not run.finished:
        return
    recipe = Recipe(**run.config()["recipe"])
    loaded = load_model(weights=run.best_checkpoint)
    data = load_dataset(loaded.spec.dataset, data_dir)
    train, _ = train_val_split(data.train, recipe.val_size, recipe.split_seed, variant.limit_train)
    resolved = resolve_device(device)
    logits = predict_logits(loaded.model.to(resolved), train.images, loaded.spec.preprocessing, device=resolved)
    accuracy = (logits.argmax(1) == train.labels).float().mean().item()
    run.write_record(TRAIN_EVAL, {"train_accuracy": accuracy, "images": len(train), "weights": run.BEST,
                                  "augmentation": "none"})  # fmt: skip


FLIP_ONLY = "test_flip_only.json"


def _measure_flip_only(run_dir: Path, data_dir, device) -> None:
    """Test accuracy of a run's kept weights with the image and its mirror only (its report has all six views):
    what the one-pixel shifts add. Written once beside the report."""
    run = RunDir(run_dir)
    if run.record(FLIP_ONLY) is not None or not run.best_checkpoint.is_file() or not run.finished:
        return
    loaded = load_model(weights=run.best_checkpoint)
    model = Classifier(loaded.model.network, loaded.spec, tta_shift=False).eval()
    test = load_dataset(loaded.spec.dataset, data_dir).test
    resolved = resolve_device(device)
    logits = predict_logits(model.to(resolved), test.images, loaded.spec.preprocessing, device=resolved)
    accuracy = fraction((logits.argmax(1) == test.labels).float().mean().item())
    run.write_record(FLIP_ONLY, {"test_accuracy": accuracy, "views": "image and mirror", "weights": run.BEST})


def _row(variant: Variant, run_dir: Path) -> Row | None:
    run = RunDir(run_dir)
    report = run.report()
    if report is None:
        return None
    config = run.config()
    measured, flip_only = run.record(TRAIN_EVAL), run.record(FLIP_ONLY)
    # Without the checkpoint (a fresh clone) the record of the last epoch is all there is.
    train_accuracy = measured["train_accuracy"] if measured else run.metrics()[-1]["train_accuracy"]
    return Row(
        label=variant.label, model=variant.model, recipe=variant.recipe, train_images=config["train_images"],
        params=report["params"], epochs=report["epochs"], train_accuracy=train_accuracy,
        val_accuracy=report["val_accuracy"], test_accuracy=report["test_accuracy"],
        train_seconds=report["train_seconds"], run=str(run_dir), images_per_second=report.get("images_per_second"),
        test_accuracy_flip=flip_only["test_accuracy"] if flip_only else None, seed=config["recipe"]["seed"],
        hardware=str(config.get("hardware", config.get("device", "unknown"))),
    )  # fmt: skip


def markdown(experiment: Experiment, rows: list[Row], planned: int) -> str:
    lines = [
        f"# {experiment.title}",
        "",
        experiment.question,
        "",
        f"Regenerate: `zoo experiment {experiment.name} --train` (finished runs are reused). "
        f"Test accuracy on {_DATA_SET_NAMES[get_spec(rows[0].model).dataset]}, of the best-validation epoch; "
        "train accuracy is that of the same weights on the images they trained on, unaugmented. One seed per row.",
        "",
        "| variant | model | recipe | train images | epochs | train acc. | val acc. | test acc. | train time |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.label} | `{r.model}` | {r.recipe} | {r.train_images:,} | {r.epochs} | {r.train_accuracy:.1%} | "
            f"{r.val_accuracy:.1%} | **{r.test_accuracy:.1%}** | {r.train_seconds:.0f} s |"
        )
    if len(rows) < planned:
        lines += ["", f"{planned - len(rows)} of {planned} runs have not been trained yet."]
    hardware = _hardware(rows)
    lines += ["", f"Hardware: {hardware}.", "", f"![{experiment.title}]({experiment.name}.png)", ""]
    return "\n".join(lines)


def ablation_markdown(experiment: Experiment, rows: list[Row], planned: int) -> str:
    full = rows[0]
    lines = [
        f"# {experiment.title}", "", experiment.question, "",
        f"Regenerate: `zoo experiment {experiment.name} --train` (finished runs are reused). Accuracy on "
        f"{_DATA_SET_NAMES[get_spec(full.model).dataset]} of the best-validation epoch, one seed per row; "
        "the test set decides nothing here. Test accuracy with six views (the image and its mirror, each also "
        "shifted one pixel up-left and down-right) and with the image and its mirror only.", "",
        "| variant | val acc. | test acc., 6 views | change | test acc., flip | train time | images/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]  # fmt: skip
    for r in rows:
        change = "—" if r is full else f"{100 * (r.test_accuracy - full.test_accuracy):+.2f}"
        flip = "—" if r.test_accuracy_flip is None else f"{r.test_accuracy_flip:.2%}"
        speed = "—" if r.images_per_second is None else f"{r.images_per_second:,.0f}"
        lines.append(f"| {r.label} | {r.val_accuracy:.2%} | **{r.test_accuracy:.2%}** | {change} | {flip} "
                     f"| {r.train_seconds:.0f} s | {speed} |")  # fmt: skip
    if len(rows) < planned:
        lines += ["", f"{planned - len(rows)} of {planned} runs have not been trained yet."]
    lines += ["", f"Hardware: {_hardware(rows)}.", "", f"![{experiment.title}]({experiment.name}.png)", ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class Summary:
    """One variant over its seeds."""

    label: str
    rows: tuple[Row, ...]

    @property
    def val(self) -> list[float]:
        return [r.val_accuracy for r in self.rows]

    @property
    def test(self) -> list[float]:
        return [r.test_accuracy for r in self.rows]


def summaries(rows: list[Row]) -> list[Summary]:
    """The finished rows grouped by variant, in the experiment's order."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.label, []).append(row)
    return [Summary(label, tuple(group)) for label, group in groups.items()]


def _spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.2%} ± {statistics.stdev(values):.2%}" if len(values) > 1 else f"{mean:.2%}"


def seeds_markdown(experiment: Experiment, rows: list[Row], planned: int) -> str:
    """Mean ± standard deviation over seeds per variant; the variant chosen is the best by validation."""
    groups = summaries(rows)
    # One choice per model, by validation. Means that print alike (to 0.01%) are a tie, and a tie keeps the
    # variant listed first (the incumbent).
    models = dict.fromkeys(g.rows[0].model for g in groups)
    chosen = [
        max((g for g in groups if g.rows[0].model == m), key=lambda g: round(statistics.fmean(g.val), 4))
        for m in models
    ]
    seeds = ", ".join(map(str, experiment.seeds))
    per_model = " (one per model)" if len(models) > 1 else ""
    lines = [
        f"# {experiment.title}", "", experiment.question, "",
        f"Regenerate: `zoo experiment {experiment.name} --train` (finished runs are reused). Each variant trained "
        f"from seeds {seeds}; accuracy on {_DATA_SET_NAMES[get_spec(rows[0].model).dataset]} of the "
        f"best-validation epoch, mean ± standard deviation over the seeds. The choice{per_model} is made on "
        "validation accuracy alone (in bold; a tie keeps the first); the test set decides nothing here.", "",
        "| variant | seeds | val acc. | val acc. per seed | test acc. | train time |",
        "| --- | ---: | ---: | --- | ---: | ---: |",
    ]  # fmt: skip
    for g in groups:
        val = f"**{_spread(g.val)}**" if any(g is c for c in chosen) else _spread(g.val)
        per_seed = " / ".join(f"{v:.2%}" for v in g.val)
        seconds = statistics.fmean(r.train_seconds for r in g.rows)
        lines.append(f"| {g.label} | {len(g.rows)} | {val} | {per_seed} | {_spread(g.test)} | {seconds:.0f} s |")
    if len(rows) < planned:
        lines += ["", f"{planned - len(rows)} of {planned} runs have not been trained yet."]
    lines += ["", f"Hardware: {_hardware(rows)}.", "", f"![{experiment.title}]({experiment.name}.png)", ""]
    return "\n".join(lines)


def reference_table(rows: list[Row]) -> str:
    """README's table: study network, parameters, reported, reproduced (study recipe), with zoo's recipe."""
    by_model: dict[str, dict[str, Row]] = {}
    for row in rows:
        by_model.setdefault(row.model, {})[row.recipe] = row
    lines = [
        "| study network | `zoo` name | params | reported | reproduced (study recipe) | zoo's recipe |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for model, recipes in by_model.items():
        ref = REFERENCE_MODELS[model]
        study, ours = recipes.get("study"), recipes.get("zoo")
        lines.append(
            f"| {ref.description} | `{model}` | {ref.params:,} | {ref.reported} | "
            f"{f'{study.test_accuracy:.1%}' if study else '—'} | {f'{ours.test_accuracy:.1%}' if ours else '—'} |"
        )
    return "\n".join(lines) + "\n"


def _hardware(rows: list[Row]) -> str:
    """The machine that trained the runs; where variants were trained on different machines, each machine
    with its variants, since their training times compare only within one machine."""
    variants: dict[str, list[str]] = {}
    for row in rows:
        labels = variants.setdefault(row.hardware, [])
        if row.label not in labels:
            labels.append(row.label)
    if len(variants) == 1:
        return next(iter(variants))
    return "; ".join(
        f"{machine} for " + ", ".join(f'"{label}"' for label in labels) for machine, labels in variants.items()
    )


def plot(experiment: Experiment, rows: list[Row], path: Path) -> None:
    plt = pyplot()
    if len(experiment.seeds) > 1:
        return _plot_seeds(plt, experiment, rows, path)
    if experiment.ablation:
        return _plot_ablation(plt, experiment, rows, path)
    figure, axes = plt.subplots(figsize=(7.5, 4.2))
    if experiment.sizes:
        sizes = [r.train_images for r in rows]
        axes.plot(sizes, [100 * r.train_accuracy for r in rows], "o--", label="train (its own training images)")
        axes.plot(sizes, [100 * r.test_accuracy for r in rows], "o-", label="test")
        axes.set_xscale("log")
        axes.set(xlabel="training images", ylabel="accuracy (%)")
        axes.set_ylim(max(0.0, 100 * min(r.test_accuracy for r in rows) - 8), 103)  # room for the labels
        axes.legend()
        for r in rows:
            axes.annotate(f"{r.test_accuracy:.1%}", (r.train_images, 100 * r.test_accuracy), textcoords="offset points",
                          xytext=(0, -13), ha="center", fontsize=7)  # fmt: skip
    else:
        labels = [r.label.replace(" (", "\n(") for r in rows]
        positions = range(len(rows))
        width = 0.38
        axes.bar(
            [p - width / 2 for p in positions],
            [100 * r.train_accuracy for r in rows],
            width,
            label="train",
            color="tab:gray",
        )
        bars = axes.bar(
            [p + width / 2 for p in positions],
            [100 * r.test_accuracy for r in rows],
            width,
            label="test",
            color="tab:blue",
        )
        axes.bar_label(bars, labels=[f"{r.test_accuracy:.1%}" for r in rows], fontsize=7, padding=2)
        axes.set_xticks(list(positions), labels, fontsize=7)
        axes.set_ylabel("accuracy (%)")
        low = min(100 * min(r.test_accuracy, r.train_accuracy) for r in rows)
        axes.set_ylim(max(0, low - 10), 100)
        axes.legend(loc="upper left", fontsize=8)
    axes.grid(alpha=0.3, axis="y")
    axes.set_title(experiment.title, fontsize=9)
    figure.tight_layout()
    save_png(figure, path)


def _plot_ablation(plt, experiment: Experiment, rows: list[Row], path: Path) -> None:
    """Test accuracy per variant (six views, and the image and its mirror only), the full recipe marked."""
    figure, axes = plt.subplots(figsize=(8.5, 0.45 * len(rows) + 1.4))
    positions = list(range(len(rows)))[::-1]
    axes.barh(positions, [100 * r.test_accuracy for r in rows], height=0.6, color="tab:blue", label="6 views")
    flips = [(p, 100 * r.test_accuracy_flip) for p, r in zip(positions, rows, strict=True) if r.test_accuracy_flip]
    if flips:
        axes.scatter([f for _, f in flips], [p for p, _ in flips], color="tab:orange", zorder=3, s=18,
                     label="image and mirror only")  # fmt: skip
    axes.axvline(100 * rows[0].test_accuracy, color="tab:red", linewidth=1, linestyle="--", label="the full recipe")
    for position, row in zip(positions, rows, strict=True):
        axes.annotate(f"{row.test_accuracy:.2%}", (100 * row.test_accuracy, position), xytext=(3, -3),
                      textcoords="offset points", fontsize=7)  # fmt: skip
    axes.set_yticks(positions, [r.label for r in rows], fontsize=7)
    low = min(100 * r.test_accuracy for r in rows) - 1.5
    axes.set_xlim(low, 100 * max(r.test_accuracy for r in rows) + 1)
    axes.set_xlabel("test accuracy (%), CIFAR-10 (JPEG test set)")
    axes.grid(alpha=0.3, axis="x")
    # below the axes: inside, it would cover a bar's label whatever corner it took
    axes.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.11),
                ncol=3, frameon=False)  # fmt: skip
    axes.set_title(experiment.title, fontsize=9)
    figure.tight_layout()
    save_png(figure, path)


def _plot_seeds(plt, experiment: Experiment, rows: list[Row], path: Path) -> None:
    """Validation and test accuracy per variant: each seed a dot, the mean a bar."""
    groups = summaries(rows)
    figure, axes = plt.subplots(figsize=(8.5, 0.6 * len(groups) + 1.6))
    positions = list(range(len(groups)))[::-1]
    for offset, metric, colour in ((0.17, "val", "tab:green"), (-0.17, "test", "tab:blue")):
        means = [100 * statistics.fmean(getattr(g, metric)) for g in groups]
        axes.barh([p + offset for p in positions], means, height=0.3, color=colour, alpha=0.35,
                  label=f"{'validation' if metric == 'val' else 'test'} (mean)")  # fmt: skip
        for position, group, mean in zip(positions, groups, means, strict=True):
            values = [100 * v for v in getattr(group, metric)]
            axes.scatter(values, [position + offset] * len(values), color=colour, s=14, zorder=3)
            axes.annotate(f"{mean:.2f}%", (max(values), position + offset), xytext=(4, -3),
                          textcoords="offset points", fontsize=7)  # fmt: skip
    every = [100 * v for g in groups for v in g.val + g.test]
    axes.set_xlim(min(every) - 0.5, max(every) + 0.5)
    axes.set_yticks(positions, [g.label for g in groups], fontsize=8)
    axes.set_xlabel(f"accuracy (%), {_DATA_SET_NAMES[get_spec(rows[0].model).dataset]}; dots: one seed each")
    axes.grid(alpha=0.3, axis="x")
    axes.legend(fontsize=7, loc="lower right")
    axes.set_title(experiment.title, fontsize=9)
    figure.tight_layout()
    save_png(figure, path)
