"""The built wheel installs training/, export/ and weights/ inside the zoo package and ships the weights."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"building the wheel failed: {done.stderr[-2000:]}")
    (wheel,) = out.glob("*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def test_no_generic_top_level_packages(wheel_names):
    top_level = {
        name.split("/", 1)[0] for name in wheel_names if not name.split("/", 1)[0].endswith((".dist-info", ".data"))
    }
    assert top_level == {"zoo"}


def test_subpackages_are_installed_under_zoo(wheel_names):
    for module in ("zoo/training/engine.py", "zoo/export/__init__.py", "zoo/core/models/cnn.py", "zoo/cli/__init__.py"):
        assert module in wheel_names, module


def test_shipped_weights_and_manifest_are_in_the_wheel(wheel_names):
    shipped = sorted(p.name for p in (REPO / "weights").glob("*.safetensors"))
    for name in shipped + (["manifest.json"] if (REPO / "weights" / "manifest.json").is_file() else []):
        assert f"zoo/weights/{name}" in wheel_names, name
