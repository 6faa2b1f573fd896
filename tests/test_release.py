"""The release path as a user meets it: the wheel built from this checkout, installed in a fresh virtual
environment in an empty folder (no checkout in sight), predicting offline with what it carries and fetching
every other model's weights from a store served on 127.0.0.1 by `python3 -m http.server`.

Slow (a virtual environment with ONNX Runtime and its other dependencies from the package index): `.ci/run`
runs it with the other slow tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import release  # noqa: E402  (benchmarks/release.py: the wheel and the fresh environment)

from zoo.core.weights import manifest, shipped_weights  # noqa: E402

pytestmark = pytest.mark.slow
IMAGE = REPO / "examples" / "3-dress.png"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the wheel, the environment's bin/ folder): built and installed once for this module."""
    work = tmp_path_factory.mktemp("release")
    wheel = release.build_wheel(work / "dist")
    return wheel, release.install(wheel, work / "venv")


@pytest.fixture(scope="module")
def store_url(tmp_path_factory):
    """Every tag's files and manifest, written by `zoo download --all --to` from this checkout and served
    over HTTP on 127.0.0.1 by Python's own static file server."""
    folder = tmp_path_factory.mktemp("store")
    done = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "download", "--all", "--to", str(folder)], capture_output=True
    )
    assert done.returncode == 0, done.stderr
    yield from _serve(folder)


def _serve(folder: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(timeout=10)


def zoo(installed, folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`zoo ARGS` from the wheel's environment, run in `folder`, with only the variables given (and PATH)."""
    _, bin_dir = installed
    base = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(folder), "ZOO_CACHE": str(folder / "cache")}
    return subprocess.run(
        [str(bin_dir / "zoo"), *args], cwd=folder, env={**base, **env}, capture_output=True, text=True, timeout=600
    )


def _top(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[0])["top"][0]["class"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_list_shows_all_nine_models_with_their_accuracy_and_no_torch(installed, tmp_path):
    done = zoo(installed, tmp_path, "list", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    for name in manifest():
        assert rows[name]["accuracy"] == shipped_weights(name).metrics["test_accuracy"], name
    _, bin_dir = installed
    assert subprocess.run([str(bin_dir / "python"), "-c", "import torch"], capture_output=True).returncode != 0


def test_predict_works_offline_straight_after_install(installed, tmp_path):
    done = zoo(installed, tmp_path, "predict", str(IMAGE), "--json", ZOO_OFFLINE="1")
    assert _top(done) == "Dress"
    assert not (tmp_path / "cache" / "weights").exists()  # nothing was fetched, nothing was needed


def test_every_model_classifies_through_the_store_as_in_the_checkout(installed, store_url, tmp_path):
    import zoo as checkout

    for name in manifest():
        expected = checkout.predict(str(IMAGE), model=name)[0].top[0]["class"]
        assert _top(zoo(installed, tmp_path, "predict", "--model", name, str(IMAGE), "--json", ZOO_WEIGHTS_URL=store_url)) == expected, name  # fmt: skip
    # An earlier tag, through the command-line option rather than the environment.
    old = shipped_weights("cifar_cnn_best", "v1")
    expected = checkout.predict(str(IMAGE), model=old.name)[0].top[0]["class"]
    assert _top(zoo(installed, tmp_path, "--weights-url", store_url, "predict", "--model", old.name, str(IMAGE), "--json")) == expected  # fmt: skip
    cached = tmp_path / "cache" / "weights"
    assert _sha256(cached / old.onnx_file) == old.onnx_sha256
    for name in ("cifar_cnn_best", "resnet18_cifar"):
        shipped = shipped_weights(name)
        assert _sha256(cached / shipped.onnx_file) == shipped.onnx_sha256


def test_a_corrupt_cached_file_is_fetched_again_and_the_answer_is_right(installed, store_url, tmp_path):
    shipped = shipped_weights("resnet18_cifar")
    assert zoo(installed, tmp_path, "download", "resnet18_cifar", ZOO_WEIGHTS_URL=store_url).returncode == 0
    cached = tmp_path / "cache" / "weights" / shipped.onnx_file
    damaged = bytearray(cached.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # one flipped byte
    cached.write_bytes(bytes(damaged))
    done = zoo(installed, tmp_path, "predict", "--model", "resnet18_cifar", str(IMAGE), "--json", ZOO_WEIGHTS_URL=store_url)  # fmt: skip
    assert "is corrupt" in done.stderr and "fetching it again" in done.stderr
    import zoo as checkout

    assert _top(done) == checkout.predict(str(IMAGE), model="resnet18_cifar")[0].top[0]["class"]
    assert _sha256(cached) == shipped.onnx_sha256


def test_a_truncated_file_in_the_store_is_one_line_and_a_non_zero_exit(installed, tmp_path):
    shipped = shipped_weights("cifar_cnn_best")
    folder = tmp_path / "damaged-store"
    folder.mkdir()
    whole = (REPO / "weights" / shipped.onnx_file).read_bytes()
    (folder / shipped.onnx_file).write_bytes(whole[: len(whole) // 2])
    for url in _serve(folder):
        done = zoo(installed, tmp_path, "predict", "--model", "cifar_cnn_best", str(IMAGE), ZOO_WEIGHTS_URL=url)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and shipped.onnx_file in lines[0] and "sha256" in lines[0], done.stderr
    assert not (tmp_path / "cache" / "weights" / shipped.onnx_file).exists()


def test_offline_with_an_empty_cache_is_one_line_naming_the_file(installed, tmp_path):
    done = zoo(installed, tmp_path, "predict", "--model", "resnet18_cifar", str(IMAGE), ZOO_OFFLINE="1")
    lines = done.stderr.strip().splitlines()
    assert (
        done.returncode == 2 and len(lines) == 1 and "resnet18_cifar.v1.onnx" in lines[0] and "ZOO_OFFLINE" in lines[0]
    )


def test_a_store_folder_written_by_download_serves_another_machine(installed, store_url, tmp_path):
    """`zoo download --all --to DIR` in the wheel's environment fetches everything from the store; a second
    'machine' (a fresh cache) then reads DIR through file:// alone."""
    first, second = tmp_path / "online", tmp_path / "air-gapped"
    first.mkdir()
    second.mkdir()
    done = zoo(installed, first, "download", "--all", "--to", str(first / "store"), ZOO_WEIGHTS_URL=store_url)
    assert done.returncode == 0, done.stderr
    for entry in manifest().values():
        for record in entry["tags"].values():
            assert _sha256(first / "store" / record["file"]) == record["sha256"]
    copied = second / "store"
    shutil.copytree(first / "store", copied)
    import zoo as checkout

    expected = checkout.predict(str(IMAGE), model="cnn_100k.v1")[0].top[0]["class"]
    done = zoo(installed, second, "predict", "--model", "cnn_100k.v1", str(IMAGE), "--json", ZOO_WEIGHTS_URL=copied.as_uri())  # fmt: skip
    assert _top(done) == expected
    assert os.listdir(second / "cache" / "weights") == ["cnn_100k.v1.onnx"]


def test_info_benchmark_and_the_torch_commands_from_the_wheel(installed, store_url, tmp_path, data_dir):
    """Every command on a model whose weights are fetched: info, a benchmark on ONNX Runtime with its accuracy;
    the commands that need torch say in one line which extra brings it."""
    info = zoo(installed, tmp_path, "info", "resnet18_cifar", "--json")
    assert info.returncode == 0 and json.loads(info.stdout)["weights"]["tag"] == "v1"
    done = zoo(
        installed, tmp_path, "benchmark", "cifar_cnn_best", "--backends", "onnxruntime", "--batch-sizes", "1",
        "--threads", "1", "--warmup", "0.1", "--min-time", "0.2", "--min-runs", "3", "--accuracy-images", "200",
        "--data-dir", str(data_dir), "--json", ZOO_WEIGHTS_URL=store_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (row,) = [r for r in json.loads(done.stdout)["rows"] if r["backend"] == "onnxruntime"]
    assert row["accuracy"] >= 0.85  # 200 test images of a 92% model
    refused = zoo(installed, tmp_path, "eval", "cnn_20k", "--data-dir", str(data_dir))
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode != 0 and len(lines) == 1 and "[torch]" in lines[0], refused.stderr
