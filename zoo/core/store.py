"""Weights on demand: where a shipped file is found, and how it is fetched and verified when it is not.

A weights store is a folder of files plus their manifest (weights/manifest.json), served by any static
HTTP(S) server (release assets, a Hugging Face Hub repository's `resolve/` URL, an internal mirror) or read
through `file://`. `zoo download --all --to DIR` writes one. A file is looked for in this order:

1. the `zoo.weights` package: a source checkout's weights/ (every tag), or the wheel's (the Fashion-MNIST
   models' default tags, so `zoo predict photo.jpg` works offline straight after install);
2. the cache, $ZOO_CACHE/weights (see zoo.core.cache);
3. the store, $ZOO_WEIGHTS_URL (default: DEFAULT_STORE_URL), unless $ZOO_OFFLINE=1.

Every file is checked against the sha256 that the installed manifest gives it before it is used. Downloads
are pooch's: a temporary file in the cache folder, checked, then renamed into place (two processes fetching
one file end with one good file), with retries on transient errors. A cached file that fails its check is
said to be corrupt, deleted and fetched again; it is never used. Torch-free.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from importlib import resources
from pathlib import Path
from urllib.parse import unquote, urlparse

from zoo.core.cache import OFFLINE_ENV, cache_dir, offline
from zoo.core.errors import WeightsError
from zoo.core.files import sha256_file

STORE_ENV = "ZOO_WEIGHTS_URL"
# Where a release publishes its store (README, "Publishing weights"): the Hugging Face Hub repository's
# files at the release's revision, which any HTTP client reads as plain files.
DEFAULT_STORE_URL = "https://huggingface.co/zoo-classifiers/weights/resolve/v0.1.0/"
RETRIES = 2  # further attempts after a failed download (pooch waits 1 s, then 2 s)


def store_url() -> str:
    """The weights store: $ZOO_WEIGHTS_URL (or `zoo --weights-url`), else the release's default store."""
    url = os.environ.get(STORE_ENV) or DEFAULT_STORE_URL
    return url if url.endswith("/") else url + "/"


def packaged_path(file: str) -> Path:
    """Where `file` sits in the zoo.weights package (a checkout's weights/, or site-packages)."""
    return Path(str(resources.files("zoo.weights").joinpath(file)))


def weights_cache() -> Path:
    return cache_dir() / "weights"


def locate(file: str) -> Path:
    """Where `file` is, or will be once fetched: in the package when it is there, else in the cache."""
    packaged = packaged_path(file)
    return packaged if packaged.is_file() else weights_cache() / file


def is_at_hand(file: str, sha256: str) -> bool:
    """Whether `file` is in the package or the cache with the right bytes: usable without a download."""
    path = locate(file)
    return path.is_file() and sha256_file(path) == sha256


def fetch(file: str, sha256: str, label: str) -> Path:
    """The verified path of a shipped `file` (with this sha256), downloaded into the cache if need be.
    `label` names what it is (`cnn_50k.v2`) in messages. Every failure is one WeightsError line."""
    packaged = packaged_path(file)
    if packaged.is_file():
        digest = sha256_file(packaged)
        if digest != sha256:
            raise WeightsError(
                f"{packaged} fails its sha256 check (found {digest[:12]}…, expected {sha256[:12]}…); "
                "restore it (git checkout, or reinstall zoo)"
            )
        return packaged
    cached = weights_cache() / file
    if cached.is_file():
        digest = sha256_file(cached)
        if digest == sha256:
            return cached
        print(
            f"warning: cached {cached} is corrupt (sha256 {digest[:12]}…, expected {sha256[:12]}…); fetching it again",
            file=sys.stderr,
        )
        cached.unlink(missing_ok=True)
    if offline():
        raise WeightsError(
            f"{file} ({label}) is not in the cache {weights_cache()} and {OFFLINE_ENV}=1 forbids downloading: "
            f"run `zoo download {label}` where the store is reachable (or copy a store folder and set "
            f"{STORE_ENV}=file:///PATH), or unset {OFFLINE_ENV}"
        )
    _check_writable(weights_cache(), file)
    return _download(file, sha256, store_url())


def _check_writable(folder: Path, file: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test.{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise WeightsError(
            f"cannot download {file}: the weights cache {folder} is not writable ({error.strerror}); "
            "set ZOO_CACHE to a writable folder"
        ) from error


def _download(file: str, sha256: str, url: str) -> Path:
    import pooch
    import requests

    scheme = urlparse(url).scheme
    if scheme not in ("http", "https", "file"):
        raise WeightsError(f"the weights store {url} is not an http(s):// or file:// URL; check {STORE_ENV}")
    pooch.get_logger().setLevel(logging.WARNING)  # zoo says what happens itself, in one line
    store = pooch.create(
        path=weights_cache(), base_url=url, registry={file: f"sha256:{sha256}"}, retry_if_failed=RETRIES
    )
    where = f"the weights store {url}"
    progress = _RichProgress(file) if scheme != "file" and sys.stderr.isatty() else None
    try:
        if scheme == "file":
            return Path(store.fetch(file, downloader=_copy_from_folder))
        return Path(store.fetch(file, downloader=pooch.HTTPDownloader(progressbar=progress or False, timeout=30)))
    except requests.HTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        hint = "check ZOO_WEIGHTS_URL or --weights-url" if status == 404 else "try again later"
        raise WeightsError(f"cannot download {file}: {where} answered HTTP {status}; {hint}") from error
    except (requests.ConnectionError, requests.Timeout) as error:
        raise WeightsError(
            f"cannot download {file}: {where} cannot be reached ({type(error).__name__}); check the network "
            f"or proxy (HTTPS_PROXY), or fill the cache on another machine with `zoo download` and set {OFFLINE_ENV}=1"
        ) from error
    except requests.RequestException as error:  # a transfer broken off (ChunkedEncodingError, ...)
        raise WeightsError(
            f"cannot download {file}: the transfer from {where} broke off ({type(error).__name__}); try again"
        ) from error
    except FileNotFoundError as error:  # file:// stores
        raise WeightsError(f"cannot download {file}: it is not in {where}; check {STORE_ENV}") from error
    except ValueError as error:  # pooch's hash check, after its retries
        raise WeightsError(
            f"cannot download {file}: {where} serves bytes that fail its sha256 check (expected {sha256[:12]}…), "
            "so they were not used; the store is damaged or holds other weights"
        ) from error
    except OSError as error:
        raise WeightsError(f"cannot download {file} into {weights_cache()}: {error.strerror}") from error
    finally:
        if progress is not None:
            progress.close()


def _copy_from_folder(url: str, output_file: str, _pooch: object) -> None:
    """pooch's downloader for a file:// store: a copy of the file (pooch checks and renames it)."""
    shutil.copyfile(unquote(urlparse(url).path), output_file)


class _RichProgress:
    """pooch's custom progress bar protocol (total, update, reset, close) on a Rich bar, on stderr."""

    def __init__(self, file: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

        self._progress = Progress(
            "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            TimeRemainingColumn(), console=Console(stderr=True), transient=False,
        )  # fmt: skip
        self._task = self._progress.add_task(file, total=None)
        self._progress.start()

    @property
    def total(self) -> float | None:
        return self._progress.tasks[0].total

    @total.setter
    def total(self, value: int) -> None:
        self._progress.update(self._task, total=value or None)

    def update(self, advance: int) -> None:
        self._progress.update(self._task, advance=advance)

    def reset(self) -> None:  # pooch fills the bar at the end with reset() then update(total)
        self._progress.update(self._task, completed=0)

    def close(self) -> None:
        self._progress.stop()
