from __future__ import annotations

import gzip
import pickle
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.core.data import load_dataset, train_val_split
from zoo.core.datasets import CIFAR10_CLASSES
from zoo.core.errors import DataNotFoundError


def test_fashion_mnist_has_the_canonical_shapes_and_balanced_labels(fashion_mnist):
    assert fashion_mnist.train.images.shape == (60000, 1, 28, 28)
    assert fashion_mnist.test.images.shape == (10000, 1, 28, 28)
    assert fashion_mnist.train.images.dtype == torch.uint8
    assert fashion_mnist.train.labels.bincount().tolist() == [6000] * 10
    assert fashion_mnist.test.labels.bincount().tolist() == [1000] * 10


def test_validation_split_is_seeded_and_disjoint(fashion_mnist):
    train, val = train_val_split(fashion_mnist.train, 5000, seed=0)
    again_train, again_val = train_val_split(fashion_mnist.train, 5000, seed=0)
    _, other_val = train_val_split(fashion_mnist.train, 5000, seed=1)
    assert len(train) == 55000 and len(val) == 5000
    assert torch.equal(val.images, again_val.images) and torch.equal(train.labels, again_train.labels)
    assert not torch.equal(val.images, other_val.images)
    # No validation image is also a training image (compare by content hashes of the rows).
    train_rows = {bytes(row) for row in train.images.flatten(1).numpy()[:20000]}
    assert not any(bytes(row) in train_rows for row in val.images.flatten(1).numpy()[:500])


def _write_idx(path, array, gz):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_reads_plain_and_gzipped_idx(tmp_path, monkeypatch, gz):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (6, 28, 28)), np.arange(6) % 10
    suffix = ".gz" if gz else ""
    for prefix in ("train", "t10k"):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{suffix}", images, gz)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz)
    data = load_dataset("fashion_mnist", tmp_path)
    assert np.array_equal(data.train.images[:, 0].numpy(), images)
    assert data.test.labels.tolist() == labels.tolist()
    assert list((tmp_path / "cache" / "arrays").glob("fashion_mnist-*.npz")), "decoded arrays are cached"


def _image_tree(root, per_class=2):
    for split in ("train", "test"):
        for label, name in enumerate(CIFAR10_CLASSES[:3]):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (32, 32), (label * 80, i * 100, 7)).save(root / split / name / f"{i:04d}.png")


def test_cifar10_reads_an_image_tree_and_its_tar_gz(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    tree = tmp_path / "tree" / "cifar10-jpeg"
    _image_tree(tree)
    from_tree = load_dataset("cifar10", tree.parent)
    assert from_tree.train.images.shape == (6, 3, 32, 32)
    assert from_tree.train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert from_tree.train.images[2, 0, 0, 0].item() == 80  # red channel encodes the class
    archive = tmp_path / "packed" / "cifar10-jpeg.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname="cifar10-jpeg")
    from_tar = load_dataset("cifar10", archive.parent)
    assert torch.equal(from_tar.train.images, from_tree.train.images)
    assert torch.equal(from_tar.test.labels, from_tree.test.labels)


def test_cifar10_reads_the_canonical_python_batches(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [1, 2, 3, 4]}
        (folder / name).write_bytes(pickle.dumps(batch))
    data = load_dataset("cifar10", tmp_path)
    assert data.train.images.shape == (20, 3, 32, 32) and data.test.images.shape == (4, 3, 32, 32)
    assert data.test.labels.tolist() == [1, 2, 3, 4]


def test_real_cifar10_jpeg_archive(data_dir):
    data = load_dataset("cifar10", data_dir)
    assert data.train.images.shape == (50000, 3, 32, 32)
    assert data.test.labels.bincount().tolist() == [1000] * 10


def test_missing_data_names_every_place_searched(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError) as error:
        load_dataset("fashion_mnist", tmp_path)
    message = str(error.value)
    for place in (
        str(tmp_path),
        str(tmp_path / "nowhere"),
        str(tmp_path / "cache"),
        "/usr/share/datasets/fashion-mnist",
    ):
        assert place in message
    assert "data_dir=DIR" in message and "ZOO_DATA" in message


def test_a_data_directory_given_once_is_found_again(data_dir, tmp_path, monkeypatch):
    """The README trains with --data-dir once; its next commands (benchmark, plot) run without it."""
    monkeypatch.delenv("ZOO_DATA")
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError, match="not found"):
        load_dataset("fashion_mnist")
    first = load_dataset("fashion_mnist", data_dir)
    again = load_dataset("fashion_mnist")
    assert again.source == first.source and torch.equal(again.test.labels, first.test.labels)
