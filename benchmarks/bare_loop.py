"""The training engine's speed beside a bare loop on the same network, data and machine.

    python3 benchmarks/bare_loop.py [--model cifar_cnn_best] [--epochs 2] [--data-dir DIR] [--json FILE]

The bare loop is what the engine does, minus its bookkeeping: the training images normalised once on the
device, a random ±2-pixel reflected crop and flip per batch with tensor ops, bf16 autocast where the CPU has
it, SGD with Nesterov momentum at the recipe's batch size. The engine is `zoo.train` with the model's own
recipe (its airbench mechanisms, and a validation pass every epoch where the recipe holds images out). Both
report images/s of their last epoch (the first warms oneDNN's kernels up), training time only.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import zoo
from zoo.core.data import load_dataset, train_val_split
from zoo.core.device import cpu_has_native_bf16, describe_hardware
from zoo.core.preprocess import normalize


def bare_loop(name: str, epochs: int, data_dir: str | None) -> float:
    spec = zoo.get_spec(name)
    recipe = spec.recipe
    bf16 = recipe.cpu_bf16 and cpu_has_native_bf16()
    if bf16:
        torch.set_flush_denormal(True)
    train, _ = train_val_split(load_dataset(spec.dataset, data_dir).train, recipe.val_size, recipe.split_seed)
    images, labels = normalize(train.images, spec.preprocessing), train.labels
    padded = F.pad(images, (2, 2, 2, 2), mode="reflect")
    model = spec.build().to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=recipe.momentum, nesterov=True)
    rate = 0.0
    for _ in range(epochs):
        started = time.perf_counter()
        order = torch.randperm(len(labels))
        for start in range(0, len(order), recipe.batch_size):
            batch = order[start : start + recipe.batch_size]
            dy, dx = torch.randint(0, 5, (2,)).tolist()  # one shift per batch: the cheapest crop there is
            x = padded[batch, :, dy : dy + 32, dx : dx + 32]
            x = torch.where(torch.rand(len(batch))[:, None, None, None] < 0.5, x.flip(-1), x)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)).float(), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        rate = len(order) / (time.perf_counter() - started)
    return rate


def engine(name: str, epochs: int, data_dir: str | None) -> float:
    recipe = zoo.get_spec(name).recipe
    with tempfile.TemporaryDirectory() as work:
        zoo.train(name, epochs=epochs, warmup_epochs=recipe.warmup_epochs * epochs / recipe.epochs,
                  out=Path(work) / "run", data_dir=data_dir, progress=False)  # fmt: skip
        records = [json.loads(line) for line in (Path(work) / "run" / "metrics.jsonl").read_text().splitlines()]
    return records[-1]["images_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cifar_cnn_best")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data-dir")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    bare = bare_loop(args.model, args.epochs, args.data_dir)
    ours = engine(args.model, args.epochs, args.data_dir)
    report = {
        "model": args.model, "hardware": describe_hardware("cpu"), "epochs": args.epochs,
        "bare_loop_images_per_second": round(bare, 1), "engine_images_per_second": round(ours, 1),
        "engine_fraction_of_bare": round(ours / bare, 3),
    }  # fmt: skip
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
