"""Shipped weights are what the registry says they are: the same bytes, and the same test accuracy."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import zoo
from zoo.checkpoint import sha256_file, shipped_weights_path
from zoo.loading import verified_shipped_weights
from zoo.recipe import Recipe
from zoo.registry import shipped_weights_manifest
from zoo.study import collect

RUNS = Path(__file__).resolve().parents[1] / "docs" / "runs"

SHIPPED = [name for name in zoo.list_models() if zoo.get_spec(name).weights_sha256]
# Large CIFAR models take minutes to evaluate on a CPU; they run in CI's slow pass.
SLOW = {"cifar_cnn_best", "resnet18_cifar"}


def test_manifest_only_names_registered_models_with_files():
    for name, entry in shipped_weights_manifest().items():
        assert name in zoo.list_models()
        assert shipped_weights_path(zoo.get_spec(name).weights_file).is_file(), name
        assert 0 < entry["metrics"]["test_accuracy"] <= 1


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_file_matches_its_registry_sha256(name):
    spec = zoo.get_spec(name)
    assert sha256_file(verified_shipped_weights(spec)) == spec.weights_sha256


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in SHIPPED])
def test_shipped_weights_reach_the_registry_test_accuracy(name, data_dir):
    spec = zoo.get_spec(name)
    result = zoo.evaluate(name, data_dir=data_dir)
    assert result.accuracy == pytest.approx(spec.metrics["test_accuracy"], abs=2e-4)  # 2 images of 10,000


@pytest.mark.gpu
@pytest.mark.parametrize("name", [n for n in SHIPPED if n not in SLOW])
def test_gpu_evaluation_reaches_the_same_accuracy(name, data_dir):
    # Accuracies are measured in exact fp32 everywhere; bf16 or TF32 evaluation once moved them by 8 images.
    result = zoo.evaluate(name, data_dir=data_dir, device="cuda")
    assert result.accuracy == pytest.approx(zoo.get_spec(name).metrics["test_accuracy"], abs=2e-4)


@pytest.mark.parametrize("name", SHIPPED)
def test_manifest_agrees_with_the_committed_run_records(name):
    """The shipped seed is the best-validation run of docs/runs, trained with the registry's own recipe."""
    (study,) = collect([name], RUNS)
    entry = shipped_weights_manifest()[name]
    assert entry["seed"] == study.best_seed
    assert entry["metrics"]["test_accuracy"] == study.shipped_accuracy
    assert entry["metrics"]["test_accuracy_mean"] == pytest.approx(study.mean)
    assert entry["metrics"]["seeds"] == len(study.seeds) >= 3
    # Fields added to Recipe after a run take their defaults, which keep the old behaviour.
    recorded = dataclasses.replace(Recipe(**study.recipe), seed=zoo.get_spec(name).recipe.seed)
    assert recorded == zoo.get_spec(name).recipe


def test_tampered_weights_fail_the_hash_check(tmp_path, monkeypatch):
    if not SHIPPED:
        pytest.skip("no shipped weights yet")
    name = SHIPPED[0]
    spec = zoo.get_spec(name)
    tampered = tmp_path / spec.weights_file
    data = bytearray(shipped_weights_path(spec.weights_file).read_bytes())
    data[-1] ^= 0xFF
    tampered.write_bytes(bytes(data))
    monkeypatch.setattr("zoo.loading.shipped_weights_path", lambda file_name: tmp_path / file_name)
    with pytest.raises(zoo.ZooError, match="fails its sha256 check"):
        zoo.create_model(name, pretrained=True)
