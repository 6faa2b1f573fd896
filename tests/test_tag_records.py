"""Every weights tag is a complete record: what trained it (the full recipe, the architecture, from which commit),
how it was measured (test views, data set, every seed's accuracy), when it shipped and what its files weigh."""

from __future__ import annotations

import datetime
import functools
import json
import re
import statistics
from pathlib import Path

import pytest

import zoo
from zoo.core import weights
from zoo.core.files import sha256_file
from zoo.core.numbers import fraction
from zoo.core.recipe import Recipe
from zoo.core.summary import count_params
from zoo.core.weights import manifest, read_manifest, shipped_weights, tags, write_manifest

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "docs" / "runs"
TAGGED = [f"{name}.{tag}" for name in manifest() for tag in tags(name)]
REQUIRED = (
    "file", "sha256", "onnx_file", "onnx_sha256", "metrics", "seed", "hardware", "dataset", "recipe", "arch",
    "tta_flip", "tta_shift", "seed_test_accuracies", "date", "commit", "size", "onnx_size",
)  # fmt: skip
KNOWN_WHERE_RECORDED = ("seed_test_accuracies", "commit")  # may be missing where the note says they are unknown


def _record(tagged: str) -> dict[str, object]:
    model, tag = tagged.split(".")
    return manifest()[model]["tags"][tag]


def _run_folder(tagged: str) -> Path | None:
    """The run records committed for a tag: docs/runs/MODEL/TAG/ (earlier tags kept beside), or docs/runs/MODEL/
    for the default tag."""
    model, tag = tagged.split(".")
    for folder, applies in ((RUNS / model / tag, True), (RUNS / model, tag == manifest()[model]["default"])):
        if applies and (folder / f"seed{_record(tagged)['seed']}" / "config.json").is_file():
            return folder
    return None


@pytest.mark.parametrize("tagged", TAGGED)
def test_every_tag_has_every_key_of_a_complete_record(tagged):
    record = _record(tagged)
    for key in REQUIRED:
        note = str(record.get("note"))
        assert key in record or (key in KNOWN_WHERE_RECORDED and key in note and "unknown" in note), (tagged, key)
    assert set(record["metrics"]) >= {"test_accuracy", "test_accuracy_mean", "test_accuracy_std", "seeds"}
    spec, shipped = zoo.get_spec(tagged), shipped_weights(tagged)
    assert shipped.dataset == spec.dataset == manifest()[spec.name]["dataset"]
    assert isinstance(shipped.tta_flip, bool) and isinstance(shipped.tta_shift, bool)
    assert datetime.date.fromisoformat(shipped.date) <= datetime.date.today()
    assert shipped.commit is None or re.fullmatch("[0-9a-f]{40}", shipped.commit)


@pytest.mark.parametrize("tagged", TAGGED)
def test_a_tag_s_recipe_is_a_full_recipe_of_its_shipped_seed(tagged):
    shipped = shipped_weights(tagged)
    assert Recipe(**shipped.recipe).to_dict() == shipped.recipe  # every field, none unknown
    assert shipped.recipe["seed"] == shipped.seed
    if shipped.recipe["teacher"] and shipped.recipe["distill_weight"]:
        assert shipped.recipe["teacher"] == shipped.teacher  # by tag: the same weights for good


@pytest.mark.parametrize("tagged", TAGGED)
def test_a_tag_s_seeds_give_its_metrics(tagged):
    shipped = shipped_weights(tagged)
    accuracies = shipped.seed_test_accuracies
    assert len(accuracies) == shipped.metrics["seeds"]
    run_figure = (
        shipped.run_test_accuracy if shipped.run_test_accuracy is not None else shipped.metrics["test_accuracy"]
    )
    assert accuracies[str(shipped.seed)] == run_figure
    assert statistics.fmean(accuracies.values()) == pytest.approx(shipped.metrics["test_accuracy_mean"], abs=1e-6)


@pytest.mark.parametrize("tagged", TAGGED)
def test_a_tag_s_architecture_is_the_builder_s_full_arguments(tagged):
    spec, shipped = zoo.get_spec(tagged), shipped_weights(tagged)
    assert set(shipped.arch) >= set(spec.arch)
    assert count_params(spec.build(**shipped.arch)) == spec.params  # test_shipped_weights loads each tag strictly


@pytest.mark.parametrize("tagged", TAGGED)
def test_sizes_and_hashes_are_those_of_the_files(tagged):
    record = _record(tagged)
    for file, digest, size in (("file", "sha256", "size"), ("onnx_file", "onnx_sha256", "onnx_size")):
        path = ROOT / "weights" / record[file]
        assert path.stat().st_size == record[size] and sha256_file(path) == record[digest], (tagged, file)


@pytest.mark.parametrize("tagged", [t for t in TAGGED if _run_folder(t)])
def test_a_tag_s_record_is_its_committed_run_s(tagged):
    """The recipe, commit and per-seed accuracies of a tag whose runs are committed are those runs' own: fields
    added to Recipe after a run take their defaults, which keep the behaviour it trained with."""
    shipped, folder = shipped_weights(tagged), _run_folder(tagged)
    config = json.loads((folder / f"seed{shipped.seed}" / "config.json").read_text())
    assert shipped.recipe == Recipe(**config["recipe"]).to_dict()
    assert shipped.commit == config["git_commit"]
    seeds = {}
    for seed_folder in sorted(folder.glob("seed*")):
        seed = json.loads((seed_folder / "config.json").read_text())["recipe"]["seed"]
        seeds[str(seed)] = fraction(json.loads((seed_folder / "report.json").read_text())["test_accuracy"])
    assert shipped.seed_test_accuracies == seeds


def test_the_default_tags_and_cifar_cnn_best_v2_v3_are_checked_against_their_runs():
    checked = {t for t in TAGGED if _run_folder(t)}
    defaults = {f"{name}.{entry['default']}" for name, entry in manifest().items()}
    assert checked >= defaults | {"cifar_cnn_best.v2", "cifar_cnn_best.v3"}


def test_no_recipe_constant_pins_a_tag_in_the_code():
    """A tag's recipe lives in its record; a constant named after a tag (FCN_50K_V2) would be a second copy."""
    pinned = re.compile(r"^\s*[A-Z][A-Z0-9_]*_V[0-9]+\w*\s*[:=]", re.MULTILINE)
    found = [f"{path.relative_to(ROOT)}: {m.group().strip()}" for path in sorted((ROOT / "zoo").rglob("*.py"))
             for m in pinned.finditer(path.read_text())]  # fmt: skip
    assert not found


def test_the_registry_reads_a_manifest_written_after_import(tmp_path, monkeypatch):
    """`zoo study --ship` writes the manifest and exports ONNX in one process: the specs must follow it."""
    entries = read_manifest(ROOT / "weights")
    monkeypatch.setattr(weights, "manifest", functools.cache(lambda: read_manifest(tmp_path)))
    write_manifest(tmp_path, entries)
    spec = zoo.get_spec("cnn_10k")
    assert spec.weights_tag == entries["cnn_10k"]["default"] != "v1"
    entries["cnn_10k"]["default"] = "v1"
    write_manifest(tmp_path, entries)  # clears the cached manifest
    v1 = entries["cnn_10k"]["tags"]["v1"]
    assert (spec.weights_tag, spec.weights_sha256, dict(spec.metrics)) == ("v1", v1["sha256"], v1["metrics"])
    assert spec.accuracy == v1["metrics"]["test_accuracy"] and spec.weights_file == "cnn_10k.v1.safetensors"
    assert zoo.get_spec("cnn_10k").weights_tag == "v1"
