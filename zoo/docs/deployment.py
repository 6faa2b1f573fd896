"""The deployment page's blocks: install sizes, the weights fetched on first use, load tests, cold starts,
and the benchmark scripts' records (OpenVINO's paths, the bare training loop, the shipped ONNX files' checks)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

from zoo.core.weights import manifest
from zoo.docs.markdown import md_table, wrap
from zoo.docs.models import onnx_validation
from zoo.docs.records import cpu_name, default_tag, nine, tag_record

INSTALLS = (  # variant in results-install-size.json, the command, what comes with it (not measured)
    ("default", "`pip install zoo-classifiers`", "ONNX Runtime (CPU), numpy, Pillow, Rich, Typer, FastAPI, uvicorn, pooch"),
    ("gpu", '`pip install "zoo-classifiers[gpu]"`', "ONNX Runtime's CUDA build in place of the CPU one; CUDA 12 and cuDNN 9 come from the system (or `onnxruntime-gpu[cuda,cudnn]`)"),
    ("torch", '`pip install "zoo-classifiers[torch]"`', "torch's default Linux wheel, with its NVIDIA CUDA packages"),
)  # fmt: skip


def install_size_block(root: Path) -> str:
    path = root / "benchmarks" / "results-install-size.json"
    if not path.is_file():
        return "Not measured yet: `bash benchmarks/install_size.sh`.\n"
    measured = json.loads(path.read_text())
    rows = [[command, f"{measured[key]['installed_mib']:,} MiB", "yes" if measured[key]["torch"] else "no",
             str(measured[key]["cuda_packages"]), what] for key, command, what in INSTALLS if key in measured]  # fmt: skip
    wheel = measured["wheel_bytes"]
    intro = (
        f"The wheel: {wheel / 1e6:.1f} MB ({wheel:,} bytes); each variant installed into a fresh virtual "
        f"environment (Python {measured['python']}, Linux x86_64), measured with `du` "
        "(`benchmarks/results-install-size.json`)."
    )
    header = ["install", "installed size", "torch", "NVIDIA packages", "what comes"]
    return wrap(intro) + "\n" + md_table(header, rows, "lrlrl")


def fetched_sizes_sentence() -> str:
    """What the weights fetched on first use weigh: the default tags the wheel does not carry."""
    fetched = [tag_record(n, default_tag(n)) for n in nine() if manifest()[n]["dataset"] != "fashion_mnist"]
    total = sum((r.get("size") or 0) + (r.get("onnx_size") or 0) for r in fetched)
    return wrap(
        "Weights fetched on first use come on top, into the cache: the CIFAR-10 models' default tags (safetensors "
        f"and ONNX) weigh {total / 1e6:.0f} MB together."
    )


def _load_test_summary(root: Path) -> Callable[[dict], str] | None:
    path = root / "benchmarks" / "load_test.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("zoo_load_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.summary


def serving_block(root: Path) -> str:
    """Each load-test record as `benchmarks/load_test.py --summary` prints it."""
    summary = _load_test_summary(root)
    parts = []
    for path in sorted((root / "benchmarks").glob("results-serve-*.json")):
        report = json.loads(path.read_text())
        if summary is None or "hostile_mix" not in report:
            continue
        parts.append(
            f"**{report.get('machine', path.stem)}**, `{report['model']}`, {report['workers']} server workers "
            f"(`benchmarks/{path.name}`):\n\n{summary(report)}"
        )
    return "\n".join(parts) or "No load-test record yet.\n"


def serving_runtimes_block(root: Path) -> str:
    """`load_test.py --runtimes` records: zoo serve's requests/s and p99 per runtime under the same load."""
    parts = []
    for path in sorted((root / "benchmarks").glob("results-serve-*.json")):
        report = json.loads(path.read_text())
        if "runtimes" not in report:
            continue
        rows = []
        for key, measured in report["runtimes"].items():
            if isinstance(measured, dict):
                runtime, _, upload = key.partition(", ")
                rounds = ", ".join(f"{rate:,.0f}" for rate in measured.get("rounds_requests_per_second", []))
                rows.append([f"`{runtime}`", upload.upper(), f"{measured['requests_per_second']:,.0f}",
                             f"{measured['p99_ms']:,.0f} ms", rounds])  # fmt: skip
        intro = (
            f"**{report['machine']}**, `{report['model']}`, {report['workers']} server workers, {report['clients']} "
            f"clients for {report['seconds']:.0f} s a round, the runtimes in turn (`benchmarks/{path.name}`); each "
            f"figure is the median of {report['rounds']} rounds:"
        )
        header = ["runtime", "upload", "requests/s", "p99", "each round's requests/s"]
        parts.append(wrap(intro) + "\n" + md_table(header, rows, "llrrl"))
    return "\n".join(parts) or "No record yet.\n"


def openvino_paths_block(root: Path) -> str:
    """`benchmarks/openvino_paths.py` records: OpenVINO's own API against ONNX Runtime's OpenVINO provider."""
    parts = []
    for path in sorted((root / "benchmarks").glob("results-openvino-paths-*.json")):
        report = json.loads(path.read_text())
        rows = [[f"`{key.split()[0]}`", " ".join(key.split()[1:]), f"{median:.2f} ms",
                 ", ".join(f"{ms_:.2f}" for ms_ in report.get("rounds_ms", {}).get(key, []))]
                for key, median in report["median_ms"].items()]  # fmt: skip
        s = report["settings"]
        intro = (
            f"{cpu_name(report['cpu'])} (`benchmarks/{path.name}`): batch {s['batch']}, {s['threads']} thread, median "
            f"of {s['runs']} runs after {s['warmup']} warm-up runs, the paths in turn for {s['rounds']} rounds; "
            + ", ".join(f"{k} {v.split('-')[0]}" for k, v in report.get("versions", {}).items())
            + "."
        )
        parts.append(
            wrap(intro) + "\n" + md_table(["model", "path and precision", "median", "each round (ms)"], rows, "llrl")
        )
    return "\n".join(parts) or "No record yet.\n"


def cold_start_block(root: Path) -> str:
    rows = []
    for path in sorted((root / "benchmarks").glob("results-cold-start-*.json")):
        machine = path.stem.removeprefix("results-cold-start-")
        for backend, measured in json.loads(path.read_text()).items():
            rows.append([f"`{machine}`", backend, f"{measured['median_s']:.2f} s", f"{measured['min_s']:.2f}–{measured['max_s']:.2f} s",
                         str(measured["runs"]), f"`benchmarks/{path.name}`"])  # fmt: skip
    header = ["machine", "backend", "median", "range", "runs", "record"]
    return md_table(header, rows, "llrrrl") if rows else "No cold-start record yet.\n"


def bare_loop_block(root: Path) -> str:
    rows = []
    for path in sorted((root / "benchmarks").glob("results-bare-loop-*.json")):
        r = json.loads(path.read_text())
        rows.append([f"`{r['model']}`", r["hardware"], str(r["epochs"]), f"{r['engine_images_per_second']:,.0f}",
                     f"{r['bare_loop_images_per_second']:,.0f}", f"{r['engine_fraction_of_bare']:.2f}×", f"`benchmarks/{path.name}`"])  # fmt: skip
    header = ["model", "machine", "epochs", "engine, images/s", "bare loop, images/s", "ratio", "record"]
    return md_table(header, rows, "llrrrrl") if rows else "No record yet.\n"


def onnx_block(root: Path) -> str:
    rows = []
    for name in nine():
        tag = default_tag(name)
        rows.append([f"`{name}.{tag}`", onnx_validation(root, tag_record(name, tag).get("onnx_file"))])
    return md_table(["shipped ONNX file", "fp32 check recorded in its metadata"], rows)
