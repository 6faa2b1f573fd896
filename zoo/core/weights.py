"""Shipped weights, pinned: every file is named by a tag (`cnn_50k.v2`, timm's `name.tag`) and its sha256,
and a file under a tag never changes. Re-shipping a model adds a tag and makes it the default; the earlier
tag stays loadable, so a recipe that names a teacher's tag (`teacher="cnn_50k.v1"`) always means the same
weights. Torch-free: `zoo list`, `zoo predict` and `zoo serve` read it on the ONNX Runtime path.

weights/manifest.json, per model: its data set, its default tag and, per tag, the file, sha256, validated
ONNX file and sha256, measured metrics and provenance (seed, hardware, teacher). A tag whose file is too
large to keep packaged once retired says where in the git history it lives instead (`history`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from zoo.core import store
from zoo.core.errors import WeightsError, ZooError
from zoo.core.files import sha256_file

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ShippedWeights:
    model: str  # registry name
    tag: str  # the version under which these bytes are pinned
    sha256: str  # of the safetensors file
    dataset: str  # the data set it was trained and measured on
    metrics: Mapping[str, float] = field(default_factory=dict)  # measured with these weights
    file: str | None = None  # in weights/; None for a retired tag kept only in the git history
    onnx_file: str | None = None  # the validated ONNX export beside it, if shipped
    onnx_sha256: str | None = None
    seed: int | None = None  # the training seed of the shipped run
    hardware: str | None = None  # where it trained
    teacher: str | None = None  # `name.tag` of the weights that taught it (distillation), if any
    teacher_sha256: str | None = None  # and their sha256
    history: str | None = None  # where a retired file lives: "git show COMMIT:weights/FILE"
    note: str | None = None  # how a figure or the provenance was established, where that needs saying
    tta_flip: bool | None = None  # the test views these weights were measured with: image and mirror averaged
    tta_shift: bool | None = None  # and, with tta_flip, that pair shifted one pixel (six views); None: the spec's
    arch: Mapping[str, object] = field(default_factory=dict)  # the builder's arguments these weights fit
    run_test_accuracy: float | None = None  # the run's own figure, where the stored file differs (float16)
    recipe: Mapping[str, object] = field(default_factory=dict)  # the full Recipe (Recipe.to_dict()) that trained them
    seed_test_accuracies: Mapping[str, float] = field(default_factory=dict)  # per seed of the study they shipped from
    date: str | None = None  # when they shipped (ISO date)
    commit: str | None = None  # the git commit that trained them, as their run recorded it
    size: int | None = None  # bytes of the safetensors file
    onnx_size: int | None = None  # bytes of the ONNX file

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"

    @property
    def path(self) -> Path | None:
        """Where the file is, or will be once fetched (zoo.core.store.locate); None for a retired tag."""
        return store.locate(self.file) if self.file else None

    @property
    def onnx_path(self) -> Path | None:
        return store.locate(self.onnx_file) if self.onnx_file else None

    @property
    def at_hand(self) -> bool:
        """Whether the safetensors file is usable without a download (packaged or cached, sha256 checked)."""
        return self.file is not None and store.is_at_hand(self.file, self.sha256)

    def verified_path(self) -> Path:
        """The file after its sha256 check, fetched from the weights store first if it is not at hand; a
        clear error when it is retired, cannot be fetched, or fails its check."""
        if self.file is None:
            raise WeightsError(
                f"{self.name} is a retired tag not packaged with zoo; {self.history or 'see git history'}"
            )
        return store.fetch(self.file, self.sha256, self.name)

    def onnx_verified(self) -> Path | None:
        """The validated ONNX file shipped for these weights (fetched like `verified_path`), or None when the
        tag ships none."""
        if self.onnx_file is None or self.onnx_sha256 is None:
            return None
        return store.fetch(self.onnx_file, self.onnx_sha256, self.name)


def weights_path(file_name: str) -> Path:
    """Where a shipped file lives in the `zoo.weights` package (repo `weights/`, or site-packages)."""
    return store.packaged_path(file_name)


@functools.cache
def manifest() -> Mapping[str, Mapping[str, object]]:
    """weights/manifest.json, written by `zoo study --ship` from real training runs and checked by tests."""
    path = resources.files("zoo.weights").joinpath(MANIFEST)
    return json.loads(path.read_text()) if path.is_file() else {}


def split_tag(name: str) -> tuple[str, str | None]:
    """'cnn_50k.v1' -> ('cnn_50k', 'v1'); 'cnn_50k' -> ('cnn_50k', None)."""
    model, dot, tag = name.partition(".")
    return model, (tag if dot else None)


def shipped_models() -> list[str]:
    """The models that ship weights, sorted by name."""
    return sorted(manifest())


def tags(model: str) -> list[str]:
    entry = manifest().get(model)
    return list(entry["tags"]) if entry else []


def shipped_weights(name: str, tag: str | None = None) -> ShippedWeights | None:
    """The weights pinned under `name.tag` (or `name` and `tag`); the default tag when none is given.
    None when the model ships no weights; a WeightsError for a tag it does not have."""
    model, named = split_tag(name)
    tag = tag or named
    entry = manifest().get(model)
    if entry is None:
        if tag is not None:
            raise WeightsError(f"{model} ships no weights, so it has no tag {tag!r}", argument="name")
        return None
    tag = tag or entry["default"]
    record = entry["tags"].get(tag)
    if record is None:
        raise WeightsError(f"{model} has no weights tag {tag!r}; its tags: {', '.join(entry['tags'])}", argument="name")
    return ShippedWeights(model=model, tag=tag, **{"dataset": entry["dataset"], **record})


def default_weights(model: str) -> ShippedWeights | None:
    return shipped_weights(model) if model in manifest() else None


# --- shipping: the one writer of the manifest ------------------------------------------------------------


def read_manifest(weights_dir: Path) -> dict[str, dict[str, object]]:
    path = weights_dir / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def write_manifest(weights_dir: Path, entries: Mapping[str, Mapping[str, object]]) -> None:
    from zoo.core.files import atomic_write

    _refuse_the_installed_package(weights_dir)
    text = json.dumps(dict(sorted(entries.items())), indent=2) + "\n"
    atomic_write(weights_dir / MANIFEST, lambda tmp: tmp.write_text(text))
    manifest.cache_clear()


def _refuse_the_installed_package(weights_dir: Path) -> None:
    """Nothing writes into an installed zoo: its weights folder belongs to pip. A source checkout's weights/
    (beside pyproject.toml) is the maintainer's store and may be written."""
    package = store.packaged_path("").resolve()
    if Path(weights_dir).resolve() == package and not (package.parent / "pyproject.toml").is_file():
        raise ZooError(
            f"{weights_dir} is the installed zoo package's own weights folder; write to a folder of your own "
            "({weights_dir=DIR}, a weights store that ZOO_WEIGHTS_URL=file:///DIR can serve)",
            argument="weights_dir",
        )


def ship(weights_dir: Path, model: str, dataset: str, checkpoint: Path, record: Mapping[str, object]) -> str:
    """Pin `checkpoint` as `model`'s default weights and return its tag: a new tag (v1, v2, ...) with a file of
    its own, so every earlier tag keeps its bytes; the same bytes shipped again keep their tag.
    `record` is the tag's facts (metrics, seed, hardware, teacher ...)."""
    import shutil

    from zoo.core.files import atomic_write

    _refuse_the_installed_package(weights_dir)
    entries = read_manifest(weights_dir)
    entry = entries.setdefault(model, {"dataset": dataset, "default": None, "tags": {}})
    digest = sha256_file(checkpoint)
    tag = next((t for t, r in entry["tags"].items() if r["sha256"] == digest), None)
    if tag is None:
        tag = f"v{len(entry['tags']) + 1}"
        file = f"{model}.{tag}.safetensors"
        atomic_write(weights_dir / file, lambda tmp: shutil.copyfile(checkpoint, tmp))
        entry["tags"][tag] = {"file": file, "sha256": digest}
    entry["tags"][tag].update(record)
    entry["default"] = tag
    write_manifest(weights_dir, entries)
    return tag


def record_onnx(weights_dir: Path, model: str, tag: str, onnx_file: str) -> str:
    """Record the validated ONNX export of `model.tag` (a file in weights_dir) and return its sha256."""
    entries = read_manifest(weights_dir)
    digest = sha256_file(weights_dir / onnx_file)
    size = (weights_dir / onnx_file).stat().st_size
    entries[model]["tags"][tag].update(onnx_file=onnx_file, onnx_sha256=digest, onnx_size=size)
    write_manifest(weights_dir, entries)
    return digest


def tag_of(model: str, sha256: str) -> str | None:
    """The tag under which `model` ships the file with this sha256, if it does."""
    entry = manifest().get(model)
    return next((tag for tag, record in entry["tags"].items() if record["sha256"] == sha256), None) if entry else None
