"""Shared fixtures. Tests read real data from $ZOO_DATA (CI sets ../shared/data) and never download."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
os.environ["ZOO_OFFLINE"] = "1"  # nothing may download at test time
if "ZOO_DATA" not in os.environ and (REPO.parent / "shared" / "data").is_dir():
    os.environ["ZOO_DATA"] = str(REPO.parent / "shared" / "data")
# Each test runs in a folder of its own (below), so a relative ZOO_DATA or ZOO_CACHE (the README's
# `ZOO_DATA=../shared/data`) is made absolute first, against the directory pytest was started in.
for variable in ("ZOO_DATA", "ZOO_CACHE"):
    if os.environ.get(variable):
        os.environ[variable] = str(Path(os.environ[variable]).resolve())
# The decoded-data cache and cached ONNX exports go to a folder of the test session's own, never to the
# user's ~/.cache/zoo (set ZOO_CACHE to share one between runs).
_OWN_CACHE = None if "ZOO_CACHE" in os.environ else tempfile.mkdtemp(prefix="zoo-test-cache-")
if _OWN_CACHE:
    os.environ["ZOO_CACHE"] = _OWN_CACHE
torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _OWN_CACHE:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _work_in_a_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands that write to the working directory (runs/, exports/) write into the test's own folder."""
    monkeypatch.chdir(tmp_path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder with the real data sets; tests that need it skip (with the reason) where it is absent."""
    path = os.environ.get("ZOO_DATA")
    if not path or not (Path(path) / "fashion-mnist").is_dir():
        pytest.skip("real data not found: set ZOO_DATA to the folder with fashion-mnist/ and cifar10-jpeg.tar.gz")
    return Path(path)


@pytest.fixture(scope="session")
def fashion_mnist(data_dir: Path):
    from zoo.core.data import load_dataset

    return load_dataset("fashion_mnist", data_dir)


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory):
    """Save a seeded random-init checkpoint of a model: enough for tests where fidelity, not accuracy, matters."""
    from zoo.api import create_model
    from zoo.core.checkpoint import save_checkpoint

    def save(name: str, seed: int = 0):
        path = tmp_path_factory.mktemp("weights") / f"{name}.safetensors"
        torch.manual_seed(seed)
        save_checkpoint(path, create_model(name).state_dict(), {"model": name})
        return path

    return save


@pytest.fixture
def unshipped(monkeypatch):
    """`unshipped("cnn_10k", ...)`: those models ship no weights for this test, as if the manifest never named
    them (the registry reads the manifest when asked, so every reader sees it). Returns the manifest left."""
    import zoo.prediction
    from zoo.core import weights

    def hide(*names: str) -> dict:
        kept = {name: entry for name, entry in weights.manifest().items() if name not in names}
        for module in (weights, zoo.prediction):  # zoo.prediction imported the function by name
            monkeypatch.setattr(module, "manifest", lambda: kept)
        return kept

    return hide
