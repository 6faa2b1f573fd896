"""The validated ONNX file of each shipped model, packaged beside its weights (weights/NAME.TAG.onnx), so that
`zoo predict` and `zoo serve` run shipped models with ONNX Runtime alone: no torch, no exporter.

    python3 -m zoo.export.shipped [NAME[.TAG] ...]   # re-export from the shipped weights; `zoo study --ship` does it too

The manifest records each file's sha256 (`onnx_sha256`) and size (`onnx_size`); a file that does not match is not
used.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from zoo.core.files import atomic_write
from zoo.core.weights import read_manifest, record_onnx, split_tag, weights_path
from zoo.export.onnx_export import export_onnx


def export_shipped(model: str, tag: str, weights_dir: Path, data_dir: str | None = None) -> str:
    """Export weights_dir/MODEL.TAG.safetensors to weights_dir/MODEL.TAG.onnx (validated on the test set) and
    record it in the manifest (file, sha256, size); returns its sha256. The registry reads the manifest as it is
    now, so weights shipped a moment ago in the same process export with their own accuracy in the metadata."""
    target, weights = f"{model}.{tag}.onnx", weights_dir / f"{model}.{tag}.safetensors"
    # The package's own files go by their tag, so the file names its weights `NAME.TAG.safetensors`, not a path
    # on the machine that exported it.
    packaged = weights.resolve() == weights_path(weights.name).resolve()
    with tempfile.TemporaryDirectory() as work:
        # Exported into a folder of its own: the Model Zoo test data written beside it stays out of weights/.
        result = export_onnx(f"{model}.{tag}" if packaged else None, weights=None if packaged else weights,
                             out=Path(work) / "m.onnx", data_dir=data_dir)  # fmt: skip
        atomic_write(weights_dir / target, lambda tmp: shutil.copyfile(result.path, tmp))
    return record_onnx(weights_dir, model, tag, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="models or model.tag (default: every model's default weights)")
    parser.add_argument("--weights-dir", type=Path, default=Path(__file__).resolve().parents[1] / "weights")
    parser.add_argument("--data-dir", help="folder with the data set (else $ZOO_DATA, the cache, ...)")
    args = parser.parse_args()
    manifest = read_manifest(args.weights_dir)
    for name in args.names or sorted(manifest):
        model, tag = split_tag(name)
        tag = tag or manifest[model]["default"]
        digest = export_shipped(model, tag, args.weights_dir, args.data_dir)
        print(f"{model}.{tag}: {args.weights_dir / f'{model}.{tag}.onnx'} ({digest[:12]}…)")


if __name__ == "__main__":
    main()
