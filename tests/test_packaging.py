"""The built wheel installs training/, export/ and weights/ inside the zoo package, and stays small: of the
weights it carries the manifest and the Fashion-MNIST models' default tags only (tests/test_release.py
installs it and fetches the rest)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from zoo.core.weights import manifest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import release  # noqa: E402  (benchmarks/release.py builds the wheel from a clean copy of the checkout)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    try:
        return release.build_wheel(tmp_path_factory.mktemp("wheel"))
    except subprocess.CalledProcessError as error:
        pytest.fail(f"building the wheel failed: {error.stderr.decode()[-2000:]}")


@pytest.fixture(scope="module")
def wheel_names(wheel) -> set[str]:
    return set(zipfile.ZipFile(wheel).namelist())


def test_no_generic_top_level_packages(wheel_names):
    top_level = {
        name.split("/", 1)[0] for name in wheel_names if not name.split("/", 1)[0].endswith((".dist-info", ".data"))
    }
    assert top_level == {"zoo"}


def test_subpackages_are_installed_under_zoo(wheel_names):
    for module in ("zoo/training/engine.py", "zoo/export/__init__.py", "zoo/core/models/cnn.py", "zoo/cli/__init__.py"):
        assert module in wheel_names, module


def test_the_wheel_carries_the_manifest_and_the_fashion_mnist_default_tags_only(wheel):
    expected = ["manifest.json"]
    for entry in manifest().values():
        if entry["dataset"] == "fashion_mnist":
            default = entry["tags"][entry["default"]]
            expected += [default["file"], default["onnx_file"]]
    assert release.weights_in(wheel) == sorted(expected)
    assert wheel.stat().st_size <= release.MAX_WHEEL_BYTES
