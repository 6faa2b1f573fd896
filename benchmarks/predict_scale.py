"""`zoo predict --json` at scale beside the bare pipeline (benchmarks/bare_pipeline.py), in the same run.

    python3 benchmarks/predict_scale.py --work /tmp/zoo-predict [--cases fashion-100k,cifar-10k,fashion-1m,...]
        [--repeats 3] [--json benchmarks/results-predict-NAME.json]

Inputs are made under --work from $ZOO_DATA (never in the repository): the 10,000 Fashion-MNIST test images
as PNGs, copied ten times under other names (100,000 files in one folder), a tree of 1,000,000 symbolic
links to them (100 folders of 10,000), and the CIFAR-10 JPEG test set (10 class folders of 1,000). Each
case runs zoo and the bare pipeline alternately, after one untimed run of each (a warm file cache), and
reports per run: wall time and images/s, time from start to the first line of output, the peak resident
memory of the process tree (the sum over the main process and its decoding processes, sampled every
0.1 s: pages forked processes share count in each), top-1 accuracy against the labels (the same files,
so the same accuracy shows both read them alike), and the load average before the run (other work on the
machine). The ratio is zoo's median images/s over the bare pipeline's. The case "cifar-eval" runs
`zoo eval cifar_cnn_best --images` on the CIFAR-10 test folders and records its accuracy beside the
model's test accuracy from the manifest. An existing --json file keeps the cases this run does not measure.
The documentation's tables are generated from the record (`python3 -m zoo.docs`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

from zoo.core.datafiles import load_arrays
from zoo.core.datasets import FASHION_MNIST_CLASSES
from zoo.core.device import cpu_info

ROOT = Path(__file__).resolve().parents[1]
BARE = [sys.executable, str(ROOT / "benchmarks" / "bare_pipeline.py")]


def cases(work: Path) -> dict[str, dict[str, object]]:
    zoo = shutil.which("zoo") or "zoo"
    fashion, links, cifar = work / "fashion-100k", work / "links-1m", work / "cifar10-jpeg" / "test"
    return {
        "fashion-100k": {"images": 100_000, "model": "cnn_20k",
                         "zoo": [zoo, "predict", str(fashion), "--model", "cnn_20k", "--json"],
                         "bare": [*BARE, "cnn_20k", str(fashion)],
                         "bare, ONNX Runtime without spinning": [*BARE, "cnn_20k", str(fashion), "--no-spinning"]},
        "cifar-10k": {"images": 10_000, "model": "cifar_cnn_best",
                      "zoo": [zoo, "predict", str(cifar), "--recursive", "--model", "cifar_cnn_best", "--json"],
                      "bare": [*BARE, "cifar_cnn_best", str(cifar), "--recursive"]},
        "fashion-100k-ray": {"images": 100_000, "model": "cnn_20k",
                             "zoo": [zoo, "predict", str(fashion), "--model", "cnn_20k", "--json"],
                             "zoo --ray (embedded)": [zoo, "predict", str(fashion), "--model", "cnn_20k", "--json", "--ray"],
                             "bare": [*BARE, "cnn_20k", str(fashion)]},
        "fashion-1m": {"images": 1_000_000, "model": "cnn_20k",
                       "zoo": [zoo, "predict", str(links), "--recursive", "--model", "cnn_20k", "--json"],
                       "bare": [*BARE, "cnn_20k", "--files-from", str(work / "links-1m.txt")]},
    }  # fmt: skip


def prepare(work: Path, data: Path) -> None:
    """The inputs, made once (a folder that exists is kept)."""
    from PIL import Image

    images = load_arrays("fashion_mnist", data)[0]["test_x"][:, 0]
    flat = work / "fashion-10k"
    if not flat.is_dir():
        flat.mkdir(parents=True)
        for index, image in enumerate(images):
            Image.fromarray(image).save(flat / f"{index:05d}.png")
    copies = work / "fashion-100k"
    if not copies.is_dir():
        copies.mkdir()
        for copy in range(10):
            for index in range(len(images)):
                shutil.copyfile(flat / f"{index:05d}.png", copies / f"r{copy}-{index:05d}.png")
    links = work / "links-1m"
    if not links.is_dir():
        with open(work / "links-1m.txt", "w") as listing:
            for folder in range(100):
                (links / f"d{folder:03d}").mkdir(parents=True)
                for index in range(len(images)):
                    link = links / f"d{folder:03d}" / f"{index:05d}.png"
                    link.symlink_to(flat / f"{index:05d}.png")
                    listing.write(f"{link}\n")
    if not (work / "cifar10-jpeg").is_dir():
        with tarfile.open(data / "cifar10-jpeg.tar.gz") as archive:
            archive.extractall(work, filter="data")


def truth(work: Path, data: Path):
    """The true class of an output row's file, by its name (Fashion-MNIST: the test index) or folder (CIFAR-10)."""
    labels = load_arrays("fashion_mnist", data)[0]["test_y"]

    def label(file: str) -> str:
        path = Path(file)
        if "cifar10-jpeg" in path.parts:
            return path.parent.name
        return FASHION_MNIST_CLASSES[labels[int(path.stem.rpartition("-")[2])]]

    return label


def run_once(command: list[str], output: Path) -> dict[str, float]:
    """Run a pipeline with its rows going to `output`; its time, first-line time, peak tree memory, load."""
    load = os.getloadavg()[0]
    peak = [0]
    with open(output, "wb") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.DEVNULL, cwd=ROOT)
        sampler = threading.Thread(target=_sample_memory, args=(process, peak), daemon=True)
        sampler.start()
        first = None
        while process.poll() is None:
            if first is None and output.stat().st_size and b"\n" in output.read_bytes()[:65536]:
                first = time.perf_counter() - started
            time.sleep(0.005)
        seconds = time.perf_counter() - started
    if process.returncode not in (0, 1):
        raise SystemExit(f"{command} failed with status {process.returncode}")
    return {"seconds": round(seconds, 2), "first_line_s": round(first or seconds, 3),
            "peak_rss_mb": round(peak[0] / 2**20), "load_before": round(load, 2)}  # fmt: skip


def _sample_memory(process: subprocess.Popen, peak: list[int]) -> None:
    while process.poll() is None:
        peak[0] = max(peak[0], sum(_rss(pid) for pid in _tree(process.pid)))
        time.sleep(0.1)


def _tree(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                queue += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def accuracy(output: Path, label) -> float:
    """Top-1 accuracy of a run's rows: zoo's JSON Lines or the bare pipeline's file, class, probability."""
    right = total = 0
    with open(output) as rows:
        for line in rows:
            if line.startswith("{"):
                row = json.loads(line)
                file, guess = row["file"], row["top"][0]["class"] if "top" in row else None
            else:
                file, guess, _ = line.rstrip("\n").split("\t")
            total += 1
            right += guess == label(file)
    return right / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="Where the inputs are made (not the repository).")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("ZOO_DATA", "../shared/data")))
    parser.add_argument("--cases", default="fashion-100k,cifar-10k,fashion-1m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.work is None:
        parser.error("--work is needed to measure")
    prepare(args.work, args.data)
    label = truth(args.work, args.data)
    report = {"machine": _machine(), "date": datetime.date.today().isoformat(), "commit": _commit(), "cases": {}}
    for name in args.cases.split(","):
        if name == "cifar-eval":
            report["cases"][name] = folder_eval(args.work / "cifar10-jpeg" / "test")
            print(name, report["cases"][name], flush=True)
            continue
        case = cases(args.work)[name]
        pipelines = {key: value for key, value in case.items() if isinstance(value, list)}
        runs = {key: [] for key in pipelines}
        for command in pipelines.values():  # untimed: the file cache is warm, as on a used machine
            run_once(command, args.work / "rows.out")
        for _ in range(args.repeats):
            for key, command in pipelines.items():
                result = run_once(command, args.work / "rows.out")
                result["images_per_s"] = round(case["images"] / result["seconds"])
                result["top1"] = round(accuracy(args.work / "rows.out", label), 4)
                runs[key].append(result)
                print(name, key, result, flush=True)
        medians = {
            key: {field: statistics.median(r[field] for r in rows) for field in rows[0]} for key, rows in runs.items()
        }
        report["cases"][name] = {
            "images": case["images"], "model": case["model"], "commands": {k: " ".join(v) for k, v in pipelines.items()},
            "runs": runs, "medians": medians,
            "ratio": round(medians["zoo"]["images_per_s"] / medians["bare"]["images_per_s"], 2),
        }  # fmt: skip
        print(name, "ratio", report["cases"][name]["ratio"], flush=True)
    if args.json:  # the cases of an earlier run of other cases are kept
        earlier = json.loads(args.json.read_text())["cases"] if args.json.is_file() else {}
        report["cases"] = {**earlier, **report["cases"]}
        args.json.write_text(json.dumps(report, indent=2) + "\n")


def folder_eval(folder: Path) -> dict[str, object]:
    """`zoo eval cifar_cnn_best --images` on the CIFAR-10 test folders, beside the manifest's test accuracy."""
    from zoo.core.weights import shipped_weights

    command = [shutil.which("zoo") or "zoo", "eval", "cifar_cnn_best", "--images", str(folder), "--json"]
    started = time.perf_counter()
    result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout)
    return {"model": "cifar_cnn_best", "command": " ".join(command), "images": result["images"],
            "accuracy": result["accuracy"], "seconds": round(time.perf_counter() - started, 1),
            "test_accuracy": shipped_weights("cifar_cnn_best").metrics["test_accuracy"]}  # fmt: skip


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return done.stdout.strip()


def _machine() -> dict[str, object]:
    return {"cpu": cpu_info()["model"], "cores": os.cpu_count(), "python": platform.python_version(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)}  # fmt: skip


if __name__ == "__main__":
    main()
