"""Per-model export report: PyTorch vs ONNX Runtime (fp32), int8 and fp16 accuracy deltas, as a Markdown table.

    ZOO_DATA=../shared/data python3 -m zoo.export.report [--test-images N] [--models cnn_10k,...] [--out DIR]

Weights: the shipped ones where a model has them; otherwise Fashion-MNIST models are quickly trained
(1 epoch on 5,000 images) and CIFAR-10 models use random-init weights — the fidelity numbers need no
training, but accuracy deltas of an untrained model say little. The column `weights` says which.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from zoo.core.errors import ZooError
from zoo.core.registry import get_spec, list_models
from zoo.export.onnx_export import export_onnx


def weights_for(name: str, work: Path) -> tuple[str | None, str]:
    spec = get_spec(name)
    if spec.weights_sha256 is not None:
        return None, "shipped"
    if spec.dataset == "fashion_mnist":
        from zoo.training import train_model

        recipe = spec.recipe.replace(epochs=1, val_size=500)
        run = train_model(spec, recipe, limit_train=5000, out=work / name, progress=False)
        return run.best_checkpoint, f"quick-trained ({run.test_accuracy:.1%})"
    return None, "random-init"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-images", type=int, default=2000, help="test images for the int8 / fp16 deltas")
    parser.add_argument("--models", default=",".join(list_models()))
    parser.add_argument("--out", type=Path, default=None, help="keep the exports here (default: a temporary folder)")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="zoo-export-report-"))
    print(
        "| model | weights | fp32 max abs Δlogit (b1 / bN) | fp32 top-1 agreement | int8 acc. Δ | fp16 acc. Δ | seconds |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.models.split(","):
        start = time.perf_counter()
        weights, label = weights_for(name, work / "runs")
        common = {"weights": weights, "random_init": weights is None, "test_images": args.test_images}
        fp32 = export_onnx(name, out=work / name / f"{name}.onnx", **common)
        deltas = []
        for precision in ("int8", "fp16"):
            try:
                result = export_onnx(name, out=work / f"{name}-{precision}" / "m.onnx", **{precision: True}, **common)
                r = result.reduced
                deltas.append(f"{r['accuracy_delta']:+.2%} ({r['accuracy_torch']:.2%}→{r['accuracy_onnx']:.2%})")
            except ZooError as error:
                deltas.append(f"failed: {error}")
        batches = fp32.validation["batches"]
        diffs = " / ".join(f"{b['max_abs_diff']:.1e}" for b in batches.values())
        print(
            f"| {name} | {label} | {diffs} | {fp32.validation['top1_agreement']:.2%} | {deltas[0]} | {deltas[1]} "
            f"| {time.perf_counter() - start:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
