"""Cold-start time of `zoo predict`: a new process classifying one image, median of several runs.

    python3 benchmarks/cold_start.py [--runs 7] [--image examples/3-dress.png]

Measures the default backend (ONNX Runtime with the shipped, validated file: no torch is imported) and
`--backend torch` for comparison, each in a fresh process, wall time from start to exit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wall_seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--image", default="examples/3-dress.png")
    args = parser.parse_args()
    zoo = shutil.which("zoo") or "zoo"
    report = {}
    for label, extra in (("default (onnxruntime)", []), ("torch", ["--backend", "torch"])):
        command = [zoo, "predict", args.image, "--json", *extra]
        wall_seconds(command)  # one untimed run: the operating system's file cache is warm, as on a used machine
        times = [wall_seconds(command) for _ in range(args.runs)]
        report[label] = {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
                         "max_s": round(max(times), 3), "runs": args.runs}  # fmt: skip
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
