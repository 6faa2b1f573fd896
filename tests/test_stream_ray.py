"""`zoo predict --ray` and `zoo tune` on Ray: embedded, and against a real `ray start --head` on 127.0.0.1
(with token authentication, Ray's default), joined through its GCS address and through ray://. Slow: each
Ray start takes seconds. The cluster is stopped afterwards, by signalling the `ray start --block` that
owns it (never `ray stop`, which would stop every Ray on the machine)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from PIL import Image

from zoo.prediction import write_predictions

ray = pytest.importorskip("ray", reason="--ray needs Ray: the [ray] or [tune] extra")
pytest.importorskip("grpc", reason="ray:// needs Ray Client: the [ray] or [tune] extra")

pytestmark = pytest.mark.slow
MODEL = "cnn_20k"
ZOO = [sys.executable, "-m", "zoo.cli"]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[str]:
    """The 10,000 Fashion-MNIST test images as PNG files, and three files that are not images among them."""
    from zoo.core.datafiles import load_arrays

    data = os.environ.get("ZOO_DATA")
    if not data:
        pytest.skip("real data not found: set ZOO_DATA")
    arrays, _ = load_arrays("fashion_mnist", data)
    folder = tmp_path_factory.mktemp("fashion")
    for index, image in enumerate(arrays["test_x"]):
        Image.fromarray(image[0]).save(folder / f"{index:05d}.png")
    (folder / "01000.png").write_text("not an image")
    (folder / "05000.png").write_bytes(b"")
    return [str(folder / f"{index:05d}.png") for index in range(10_000)] + [str(folder / "missing.png")]


@pytest.fixture(scope="module")
def local_rows(images: list[str], tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("local") / "rows.jsonl"
    summary = write_predictions(images, out, model=MODEL)
    assert (summary.predicted, summary.failed) == (9_998, 3)
    return out.read_text()


def test_embedded_ray_gives_the_local_rows_on_10000_images(images: list[str], local_rows: str, tmp_path: Path) -> None:
    out = tmp_path / "ray.jsonl"
    write_predictions(images, out, model=MODEL, ray=True)
    assert out.read_text() == local_rows  # the same rows, byte for byte, in the same order
    out.write_text(local_rows[: len(local_rows) * 2 // 5])  # a run stopped at 40%, in the middle of a row
    resumed = write_predictions(images, out, model=MODEL, ray=True, resume=True)
    assert out.read_text() == local_rows and resumed.resumed + resumed.predicted + resumed.failed == 10_001


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.fixture(scope="module")
def cluster():
    """A one-node Ray cluster started as the README says, token authentication on; its GCS and Ray Client
    ports and the environment a driver needs to join it. Its temporary folder is its own, so that no other
    Ray on the machine takes it for the latest cluster."""
    if shutil.which("ray") is None:
        pytest.skip("the ray command is not installed")
    root = Path(tempfile.mkdtemp(prefix="zr"))  # short: Ray's socket paths must fit 107 bytes
    token = root / "token"
    token.write_text("zoo-test-token-" + os.urandom(8).hex())
    gcs, client, agent, metrics, runtime = _free_ports(5)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    head = subprocess.Popen(
        ["ray", "start", "--head", "--block", "--port", str(gcs), "--ray-client-server-port", str(client),
         "--dashboard-agent-listen-port", str(agent), "--metrics-export-port", str(metrics),
         "--runtime-env-agent-port", str(runtime), "--num-cpus", "2", "--include-dashboard", "false",
         "--disable-usage-stats", "--temp-dir", str(root / "ray")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not all(_listening(port) for port in (gcs, client)):
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start --head did not come up (status {head.poll()})")
            time.sleep(0.5)
        yield {"gcs": f"127.0.0.1:{gcs}", "client": f"ray://127.0.0.1:{client}", "env": env}
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        try:
            head.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _zoo(*args: str, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*ZOO, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_joining_a_token_cluster_without_the_token_says_what_to_set(cluster, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    for address in (cluster["gcs"], cluster["client"]):
        started = time.monotonic()
        done = _zoo("predict", str(tmp_path), "--ray", "--address", address, "--json", env=env)
        assert done.returncode == 2 and done.stdout == "" and time.monotonic() - started < 30
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: the Ray cluster at")
        assert "set RAY_AUTH_MODE=token" in done.stderr
        done = _zoo("tune", "fcn_50k", "--address", address, env=env)
        assert done.returncode == 2 and "set RAY_AUTH_MODE=token" in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.parametrize("kind", ["gcs", "client"])
def test_predict_on_the_cluster_gives_the_local_rows(cluster, images: list[str], local_rows: str, tmp_path: Path, kind: str) -> None:  # fmt: skip
    listing = tmp_path / "files.txt"
    listing.write_text("".join(f"{name}\n" for name in images))
    out = tmp_path / "ray.jsonl"
    done = _zoo("predict", "--files-from", str(listing), "--model", MODEL, "--ray", "--address", cluster[kind],
                "--out", str(out), env=cluster["env"])  # fmt: skip
    assert done.returncode == 1, done.stderr  # three inputs are not images
    assert "10,001 inputs: 9,998 classified, 3 could not be read" in done.stderr
    assert out.read_text() == local_rows


@pytest.mark.parametrize("kind", ["gcs", "client"])
def test_tune_on_the_cluster(cluster, tmp_path: Path, kind: str) -> None:
    done = _zoo("tune", "fcn_50k", "--samples", "2", "--max-epochs", "1", "--limit-train", "500", "--address",
                cluster[kind], "--out", str(tmp_path), "--json", env=cluster["env"])  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert len(result["trials"]) == 2 and all(t["epochs_run"] == 1 for t in result["trials"])
