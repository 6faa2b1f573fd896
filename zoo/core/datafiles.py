"""Data set files, torch-free: found on disk (or downloaded when online), decoded once into uint8 arrays and
cached, so that the ONNX Runtime path (a benchmark's test images) needs no torch. zoo.core.data wraps them
as tensors for training and evaluation.

Where a data set is looked for, in order: the data directory passed, $ZOO_DATA, the user cache, the system's
data set folder, and the folder it was last found in (remembered in the user cache, so a command given
`--data-dir` once finds it again without it).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import os
import pickle
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from zoo.core.cache import cache_dir, offline
from zoo.core.datasets import CIFAR10_CLASSES, DATASETS
from zoo.core.errors import DataNotFoundError, ZooError

log = logging.getLogger(__name__)

FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SYSTEM_DIRS = {"fashion_mnist": [Path("/usr/share/datasets/fashion-mnist")]}  # Debian's dataset-fashion-mnist


def search_dirs(data_dir: str | os.PathLike[str] | None = None, name: str = "fashion_mnist") -> list[Path]:
    """Where data is looked for, in order (see above)."""
    dirs = [Path(data_dir)] if data_dir else []
    if os.environ.get("ZOO_DATA"):
        dirs.append(Path(os.environ["ZOO_DATA"]))
    dirs += [cache_dir(), *SYSTEM_DIRS.get(name, [])]
    remembered = _remembered_dir(name)
    return dirs + ([remembered] if remembered is not None and remembered not in dirs else [])


def load_arrays(name: str, data_dir: str | os.PathLike[str] | None = None) -> tuple[dict[str, np.ndarray], str]:
    """The data set's uint8 arrays (train_x [N, C, H, W], train_y, test_x, test_y) and where they came from."""
    if name not in DATASETS:
        raise ZooError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}", argument="dataset")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise DataNotFoundError(f"data directory {str(data_dir)!r} does not exist", argument="data_dir")
    finder = _find_fashion_mnist if name == "fashion_mnist" else _find_cifar10
    dirs = search_dirs(data_dir, name)
    for directory in dirs:
        source = finder(directory)
        if source is not None:
            _remember(name, directory)
            return _cached_arrays(name, source), str(source)
    source = _download(name)
    if source is not None:
        return _cached_arrays(name, source), str(source)
    places = ", ".join(str(d) for d in dirs)
    files = (
        "the four Fashion-MNIST IDX files" if name == "fashion_mnist" else "cifar-10-batches-py or cifar10-jpeg.tar.gz"
    )
    raise DataNotFoundError(
        f"{name} not found in {places} and it could not be downloaded (offline?); "
        f"put {files} in a folder and pass {{data_dir=DIR}} (or set ZOO_DATA=DIR)",
    )


def _remembered_file(name: str) -> Path:
    return cache_dir() / "data-dirs" / name


def _remember(name: str, directory: Path) -> None:
    """Keep the folder a data set was found in, for commands run later without --data-dir."""
    path = _remembered_file(name)
    try:
        if not path.is_file() or path.read_text() != str(directory.resolve()):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(str(directory.resolve()))
    except OSError:
        pass  # a read-only cache: the folder is simply not remembered


def _remembered_dir(name: str) -> Path | None:
    path = _remembered_file(name)
    try:
        return Path(path.read_text()) if path.is_file() else None
    except OSError:
        return None


# --- finding the files -------------------------------------------------------------------------


def _find_fashion_mnist(directory: Path) -> Path | None:
    for candidate in (
        directory,
        directory / "fashion-mnist",
        directory / "fashion_mnist",
        directory / "FashionMNIST" / "raw",
    ):
        if all(_idx_path(candidate, stem) for stem in FASHION_MNIST_FILES.values()):
            return candidate
    return None


def _idx_path(directory: Path, stem: str) -> Path | None:
    for path in (directory / stem, directory / f"{stem}.gz"):
        if path.is_file():
            return path
    return None


def _find_cifar10(directory: Path) -> Path | None:
    candidates = [
        directory / "cifar-10-batches-py",
        directory / "cifar10-jpeg.tar.gz",
        directory / "cifar10-jpeg",
        directory / "cifar10",
        directory,
    ]
    for candidate in candidates:
        if candidate.is_dir() and (candidate / "data_batch_1").is_file():
            return candidate
        if candidate.is_file() and candidate.name.endswith((".tar.gz", ".tgz", ".tar")):
            return candidate
        if candidate.is_dir() and (candidate / "train" / CIFAR10_CLASSES[0]).is_dir():
            return candidate
    return None


def _download(name: str) -> Path | None:
    """Fetch the canonical set through torchvision into the user cache; None when offline or disabled."""
    if offline():
        return None
    try:
        from torchvision import datasets
    except ImportError:  # the torch-free install downloads nothing
        return None

    root = cache_dir()
    log.warning("downloading %s into %s ...", name, root)
    try:
        # torchvision prints progress on stdout, which belongs to --json output.
        with contextlib.redirect_stdout(sys.stderr):
            if name == "fashion_mnist":
                for train in (True, False):
                    datasets.FashionMNIST(root, train=train, download=True)
                return _find_fashion_mnist(root)
            datasets.CIFAR10(root, train=True, download=True)
            return _find_cifar10(root)
    except (OSError, RuntimeError) as error:  # no network, a refused or broken download: "not available"
        log.warning("download of %s failed: %s", name, error)
        return None


# --- decoding and caching ----------------------------------------------------------------------


def _cached_arrays(name: str, source: Path) -> dict[str, np.ndarray]:
    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    cache = cache_dir() / "arrays" / f"{name}-{key}.npz"
    if cache.is_file():
        try:
            with np.load(cache) as arrays:
                return {k: arrays[k] for k in arrays.files}
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    arrays = _decode_fashion_mnist(source) if name == "fashion_mnist" else _decode_cifar10(source)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(temporary, **arrays)
        temporary.replace(cache)
    except OSError:
        pass  # a read-only cache only costs decoding time
    return arrays


def _read_idx(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 8 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ZooError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ZooError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {data.size}")
    return data.reshape(shape)


def _decode_fashion_mnist(directory: Path) -> dict[str, np.ndarray]:
    def read(key: str) -> np.ndarray:
        path = _idx_path(directory, FASHION_MNIST_FILES[key])
        assert path is not None  # checked by _find_fashion_mnist
        return _read_idx(path)

    return {
        "train_x": read("train_images")[:, None],
        "train_y": read("train_labels"),
        "test_x": read("test_images")[:, None],
        "test_y": read("test_labels"),
    }


def _decode_cifar10(source: Path) -> dict[str, np.ndarray]:
    if source.is_dir() and (source / "data_batch_1").is_file():
        return _decode_cifar10_batches(source)
    return _decode_image_tree(_iter_image_files(source))


def _decode_cifar10_batches(directory: Path) -> dict[str, np.ndarray]:
    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        images, labels = [], []
        for file in files:
            with open(directory / file, "rb") as handle:
                batch = pickle.load(handle, encoding="latin1")
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch["labels"], dtype=np.uint8))
        return np.concatenate(images), np.concatenate(labels)

    train_x, train_y = read([f"data_batch_{i}" for i in range(1, 6)])
    test_x, test_y = read(["test_batch"])
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}


def _iter_image_files(source: Path) -> Iterator[tuple[str, bytes]]:
    """Yield (relative path, file bytes) for every image in a folder tree or a tar archive of one."""
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                yield str(path.relative_to(source)), path.read_bytes()
        return
    with tarfile.open(source) as archive:
        for member in archive:
            if member.isfile() and Path(member.name).suffix.lower() in IMAGE_SUFFIXES:
                handle = archive.extractfile(member)
                if handle is not None:
                    yield member.name, handle.read()


def _decode_image_tree(files: Iterator[tuple[str, bytes]]) -> dict[str, np.ndarray]:
    """Decode `<split>/<class>/<image>` entries (at any depth) into arrays, in a stable order."""
    from PIL import Image

    class_index = {name: i for i, name in enumerate(CIFAR10_CLASSES)}
    found: dict[str, list[tuple[str, int, np.ndarray]]] = {"train": [], "test": []}
    for name, payload in files:
        parts = Path(name).parts
        if len(parts) < 3 or parts[-3] not in found:
            continue
        label = class_index.get(parts[-2])
        if label is None:
            raise ZooError(f"unknown CIFAR-10 class folder {parts[-2]!r} in {name}")
        with Image.open(io.BytesIO(payload)) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
        found[parts[-3]].append((name, label, pixels.transpose(2, 0, 1)))
    if not found["train"] or not found["test"]:
        raise ZooError("the CIFAR-10 image tree needs train/<class>/ and test/<class>/ folders with images")
    arrays = {}
    for split, items in found.items():
        items.sort(key=lambda item: item[0])
        arrays[f"{split}_x"] = np.stack([pixels for _, _, pixels in items])
        arrays[f"{split}_y"] = np.array([label for _, label, _ in items], dtype=np.uint8)
    return arrays
