"""Weights on demand against a real HTTP server on 127.0.0.1: downloads are verified before use, land in the
cache whole or not at all, and every failure (offline, 404, wrong or truncated bytes, a transfer broken off,
an unwritable cache) is one line that names the file."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from zoo.core import store
from zoo.core.errors import WeightsError
from zoo.core.weights import manifest, shipped_weights

REPO = Path(__file__).resolve().parents[1]
SMALL = shipped_weights("cnn_10k", "v1")  # 42 KB: the file the transfer tests move


class StoreServer(http.server.ThreadingHTTPServer):
    """A static server of `folder`; files named in `hang_up` get their full Content-Length but only half
    their bytes before the connection closes (`hang_up_times` times, then whole); counts requests per path."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.hang_up: set[str] = set()
        self.hang_up_times = 1_000
        self.requests: dict[str, int] = {}
        self.throttle = 0.0  # seconds between 4 KiB chunks, so concurrent downloads overlap
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: StoreServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's spelling)
        name = self.path.lstrip("/")
        self.server.requests[name] = self.server.requests.get(name, 0) + 1
        path = self.server.folder / name
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if name in self.server.hang_up and self.server.requests[name] <= self.server.hang_up_times:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        for start in range(0, len(body), 4096):
            self.wfile.write(body[start : start + 4096])
            if self.server.throttle:
                threading.Event().wait(self.server.throttle)

    def log_message(self, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A store folder holding cnn_10k.v1's file, served on 127.0.0.1; an empty cache; a package without
    weights files (as a wheel without that tag), online."""
    folder = tmp_path / "store"
    folder.mkdir()
    shutil.copyfile(REPO / "weights" / SMALL.file, folder / SMALL.file)
    server = StoreServer(folder)
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ZOO_WEIGHTS_URL", server.url)
    monkeypatch.delenv("ZOO_OFFLINE", raising=False)
    monkeypatch.setattr(store, "packaged_path", lambda file: tmp_path / "package" / file)
    monkeypatch.setattr(store, "RETRIES", 1)  # one retry: pooch waits 1 s before it
    yield server
    server.shutdown()
    server.server_close()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(cache: Path) -> list[str]:
    """Anything in the weights cache but the finished files: temporary files must not survive."""
    return sorted(p.name for p in (cache / "weights").iterdir() if p.name != SMALL.file) if cache.is_dir() else []


def test_a_file_not_at_hand_is_downloaded_verified_and_then_read_from_the_cache(served, tmp_path):
    path = store.fetch(SMALL.file, SMALL.sha256, SMALL.name)
    assert path == tmp_path / "cache" / "weights" / SMALL.file
    assert _sha256(path) == SMALL.sha256
    assert store.fetch(SMALL.file, SMALL.sha256, SMALL.name) == path
    assert served.requests == {SMALL.file: 1}  # the second call used the cache
    assert _leftovers(tmp_path / "cache") == []


def test_a_corrupt_cached_file_is_said_to_be_so_and_fetched_again(served, tmp_path, capsys):
    cached = tmp_path / "cache" / "weights" / SMALL.file
    cached.parent.mkdir(parents=True)
    cached.write_bytes((REPO / "weights" / SMALL.file).read_bytes()[:1000])  # truncated by a crash, say
    path = store.fetch(SMALL.file, SMALL.sha256, SMALL.name)
    assert _sha256(path) == SMALL.sha256
    warning = capsys.readouterr().err
    assert f"cached {cached} is corrupt" in warning and "fetching it again" in warning
    assert served.requests == {SMALL.file: 1}


@pytest.mark.parametrize("damage", ["truncated", "wrong bytes"])
def test_a_store_serving_other_bytes_is_refused_and_nothing_is_kept(served, tmp_path, damage):
    original = (served.folder / SMALL.file).read_bytes()
    damaged = original[: len(original) // 3] if damage == "truncated" else original[::-1]
    (served.folder / SMALL.file).write_bytes(damaged)
    with pytest.raises(WeightsError) as caught:
        store.fetch(SMALL.file, SMALL.sha256, SMALL.name)
    message = str(caught.value)
    assert SMALL.file in message and "sha256" in message and "not used" in message and "\n" not in message
    assert not (tmp_path / "cache" / "weights" / SMALL.file).exists()
    assert _leftovers(tmp_path / "cache") == []
    assert served.requests[SMALL.file] == 2  # tried again once before giving up


def test_a_file_missing_from_the_store_is_a_404_that_names_the_file_and_the_store(served):
    (served.folder / SMALL.file).unlink()
    with pytest.raises(WeightsError) as caught:
        store.fetch(SMALL.file, SMALL.sha256, SMALL.name)
    message = str(caught.value)
    assert SMALL.file in message and "HTTP 404" in message and served.url in message


def test_a_transfer_broken_off_every_time_fails_in_one_line(served, tmp_path):
    served.hang_up.add(SMALL.file)
    with pytest.raises(WeightsError) as caught:
        store.fetch(SMALL.file, SMALL.sha256, SMALL.name)
    assert SMALL.file in str(caught.value) and "broke off" in str(caught.value)
    assert not (tmp_path / "cache" / "weights" / SMALL.file).exists()
    assert _leftovers(tmp_path / "cache") == []


def test_a_transfer_broken_off_once_is_retried_and_succeeds(served):
    served.hang_up.add(SMALL.file)
    served.hang_up_times = 1
    path = store.fetch(SMALL.file, SMALL.sha256, SMALL.name)
    assert _sha256(path) == SMALL.sha256
    assert served.requests[SMALL.file] == 2


def test_offline_with_an_empty_cache_makes_no_request_and_says_what_to_do(served, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(WeightsError) as caught:
        store.fetch(SMALL.file, SMALL.sha256, SMALL.name)
    message = str(caught.value)
    assert SMALL.file in message and "ZOO_OFFLINE=1" in message and f"zoo download {SMALL.name}" in message
    assert served.requests == {}


def test_an_unreachable_store_says_so(served, monkeypatch):
    served.shutdown()
    served.server_close()  # nothing listens on that port now
    with pytest.raises(WeightsError) as caught:
        store.fetch(SMALL.file, SMALL.sha256, SMALL.name)
    assert SMALL.file in str(caught.value) and "cannot be reached" in str(caught.value)


def test_an_unwritable_cache_is_named_with_the_fix(served, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ZOO_CACHE", str(blocker / "cache"))  # a folder under a file cannot be made, even by root
    with pytest.raises(WeightsError) as caught:
        store.fetch(SMALL.file, SMALL.sha256, SMALL.name)
    message = str(caught.value)
    assert SMALL.file in message and "not writable" in message and "ZOO_CACHE" in message
    assert served.requests == {}


def test_two_processes_fetching_one_file_end_with_one_good_file(served, tmp_path):
    served.throttle = 0.02  # about 0.2 s per download, so the two overlap
    code = (
        f"import sys; from zoo.core import store; print(store.fetch({SMALL.file!r}, {SMALL.sha256!r}, {SMALL.name!r}))"
    )
    # The package's own weights/ holds the file: the children must not find it there, so they run from a
    # copy of the package whose weights folder is empty.
    env = {**os.environ, "PYTHONPATH": str(_package_without_weights(tmp_path))}
    children = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)]
    children.append(subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True))
    paths = {child.communicate(timeout=120)[0].strip() for child in children}
    assert [child.returncode for child in children] == [0, 0]
    assert paths == {str(tmp_path / "cache" / "weights" / SMALL.file)}
    assert served.requests[SMALL.file] == 2  # both downloaded: neither saw a half-written file
    assert _sha256(Path(paths.pop())) == SMALL.sha256
    assert _leftovers(tmp_path / "cache") == []


def _package_without_weights(tmp_path: Path) -> Path:
    """An importable copy of the zoo package whose zoo.weights holds only the manifest."""
    root = tmp_path / "site"
    shutil.copytree(REPO / "zoo", root / "zoo", ignore=shutil.ignore_patterns("__pycache__"))
    for folder, name in (("training", "training"), ("export", "export")):
        shutil.copytree(REPO / folder, root / "zoo" / name, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "zoo" / "weights").mkdir()
    shutil.copyfile(REPO / "weights" / "__init__.py", root / "zoo" / "weights" / "__init__.py")
    shutil.copyfile(REPO / "weights" / "manifest.json", root / "zoo" / "weights" / "manifest.json")
    return root


def test_download_all_to_a_folder_writes_a_store_another_machine_reads(tmp_path, monkeypatch):
    """`zoo download --all --to DIR` from the checkout, then a 'machine' whose package holds no weights reads
    DIR as its store through file://, and predicts with an earlier tag of a CIFAR-10 model."""
    from zoo.cli import main

    target = tmp_path / "store"
    assert main(["download", "--all", "--to", str(target)]) == 0
    written = json.loads((target / "manifest.json").read_text())
    assert written == json.loads(json.dumps(manifest()))  # every tag's record, as installed
    for entry in written.values():
        for record in entry["tags"].values():
            assert _sha256(target / record["file"]) == record["sha256"]
            assert _sha256(target / record["onnx_file"]) == record["onnx_sha256"]

    import zoo

    expected = zoo.predict(str(REPO / "examples" / "3-dress.png"), model="cifar_cnn_best.v1")[0].top
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "other-cache"))
    monkeypatch.setenv("ZOO_WEIGHTS_URL", target.as_uri())
    monkeypatch.delenv("ZOO_OFFLINE", raising=False)
    monkeypatch.setattr(store, "packaged_path", lambda file: tmp_path / "empty-package" / file)
    answer = zoo.predict(str(REPO / "examples" / "3-dress.png"), model="cifar_cnn_best.v1")[0]
    assert answer.error is None and answer.top == expected and answer.backend == "onnxruntime"
    assert sorted(p.name for p in (tmp_path / "other-cache" / "weights").iterdir()) == ["cifar_cnn_best.v1.onnx"]


def test_a_failed_fetch_on_the_command_line_is_one_line_and_a_non_zero_exit(tmp_path):
    """A package without weights, offline, an empty cache: `zoo predict` with a CIFAR-10 model."""
    env = {
        **os.environ, "PYTHONPATH": str(_package_without_weights(tmp_path)), "ZOO_CACHE": str(tmp_path / "cache"),
        "ZOO_OFFLINE": "1",
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "predict", "--model", "resnet18_cifar", str(REPO / "examples" / "8-bag.png")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: resnet18_cifar.v1.onnx (resnet18_cifar.v1)"), done.stderr


def test_nothing_is_shipped_into_an_installed_package(tmp_path, monkeypatch):
    from zoo.core.errors import ZooError
    from zoo.core.weights import ship

    installed = tmp_path / "site-packages" / "zoo" / "weights"
    installed.mkdir(parents=True)
    monkeypatch.setattr(store, "packaged_path", lambda file: installed / file)
    checkpoint = REPO / "weights" / SMALL.file
    with pytest.raises(ZooError) as caught:
        ship(installed, "cnn_10k", "fashion_mnist", checkpoint, {})
    assert "installed zoo package" in str(caught.value)
    assert list(installed.iterdir()) == []
    # A folder of the user's own is a store of its own.
    assert ship(tmp_path / "mine", "cnn_10k", "fashion_mnist", checkpoint, {}) == "v1"
    assert (
        json.loads((tmp_path / "mine" / "manifest.json").read_text())["cnn_10k"]["tags"]["v1"]["sha256"] == SMALL.sha256
    )
