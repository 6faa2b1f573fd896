"""The validated ONNX file of each shipped model, packaged beside its weights (weights/NAME.onnx), so that
`zoo predict` and `zoo serve` run shipped models with ONNX Runtime alone: no torch, no exporter.

    python3 -m zoo.export.shipped [NAME ...]   # re-export from the shipped weights; `zoo study --ship` does it too

The manifest records each file's sha256 (`onnx_sha256`); a file that does not match is not used.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from zoo.checkpoint import atomic_write, sha256_file
from zoo.export.onnx_export import export_onnx
from zoo.registry import MANIFEST, get_spec


def export_shipped(name: str, weights_dir: Path, data_dir: str | None = None) -> str:
    """Export weights_dir/NAME.safetensors to weights_dir/NAME.onnx (validated on the test set); its sha256."""
    spec = get_spec(name)
    target = weights_dir / f"{spec.name}.onnx"
    with tempfile.TemporaryDirectory() as work:
        # Exported into a folder of its own: the Model Zoo test data written beside it stays out of weights/.
        result = export_onnx(spec.name, weights=weights_dir / spec.weights_file, out=Path(work) / "m.onnx",
                             data_dir=data_dir)  # fmt: skip
        atomic_write(target, lambda tmp: shutil.copyfile(result.path, tmp))
    return sha256_file(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="models (default: every model that ships weights)")
    parser.add_argument("--weights-dir", type=Path, default=Path(__file__).resolve().parents[1] / "weights")
    parser.add_argument("--data-dir", help="folder with the data set (else $ZOO_DATA, the cache, ...)")
    args = parser.parse_args()
    manifest_path = args.weights_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    for name in args.names or sorted(manifest):
        manifest[name]["onnx_sha256"] = export_shipped(name, args.weights_dir, args.data_dir)
        print(f"{name}: {args.weights_dir / (name + '.onnx')} ({manifest[name]['onnx_sha256'][:12]}…)")
    text = json.dumps(dict(sorted(manifest.items())), indent=2) + "\n"
    atomic_write(manifest_path, lambda tmp: tmp.write_text(text))


if __name__ == "__main__":
    main()
