"""Write examples/: one Fashion-MNIST test image per class, as PNG, for the README demo and the tests.

    python3 -m zoo.export.make_examples [--data-dir DIR] [--out examples]

The first test image of each class is taken, so the files are the same on every machine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from zoo.core.data import load_dataset
from zoo.core.datasets import FASHION_MNIST_CLASSES


def file_name(index: int, class_name: str) -> str:
    return f"{index}-{class_name.lower().replace('/', '-').replace(' ', '-')}.png"


def write_examples(out: Path, data_dir: str | None = None) -> list[Path]:
    test = load_dataset("fashion_mnist", data_dir).test
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for label, class_name in enumerate(FASHION_MNIST_CLASSES):
        first = int((test.labels == label).nonzero()[0])
        path = out / file_name(label, class_name)
        Image.fromarray(test.images[first, 0].numpy(), "L").save(path, optimize=True)
        written.append(path)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "examples")
    args = parser.parse_args()
    for path in write_examples(args.out, args.data_dir):
        print(path)
