"""The prediction-at-scale page's blocks, from `benchmarks/predict_scale.py` records: `zoo predict` beside the
bare pipeline (images/s, peak memory, time to the first row, top-1), and `zoo eval --images` on the CIFAR-10
test folders beside the model's test accuracy."""

from __future__ import annotations

import json
from pathlib import Path

from zoo.docs.markdown import md_table, percent, wrap

RECORDS = "results-predict-*.json"


def predict_scale_block(root: Path) -> str:
    parts = []
    for path in sorted((root / "benchmarks").glob(RECORDS)):
        report = json.loads(path.read_text())
        machine = report["machine"]
        rows = []
        for name, case in report["cases"].items():
            if "medians" not in case:
                continue
            bare = case["medians"]["bare"]["images_per_s"]
            for pipeline, median in case["medians"].items():
                first = pipeline == next(iter(case["medians"]))
                rows.append([
                    f"{case['images']:,} ({name})" if first else "", f"`{case['model']}`" if first else "",
                    str(len(case["runs"][pipeline])) if first else "",
                    pipeline, f"{median['images_per_s']:,.0f}", f"{median['images_per_s'] / bare:.2f}×",
                    f"{median['peak_rss_mb']:,.0f} MB", f"{median['first_line_s']:.2f} s", percent(median["top1"]),
                ])  # fmt: skip
        intro = (
            f"**{machine['cpu']}**, {machine['cores']} cores, {machine['memory_gb']} GB, Python {machine['python']}, "
            f"{report['date']} at commit `{report['commit']}` (`benchmarks/{path.name}`): `python3 "
            f"benchmarks/predict_scale.py --work /tmp/zoo-predict --cases CASE --repeats RUNS --json "
            f"benchmarks/{path.name}`. Each figure is the median of the case's runs, the pipelines in turn, after "
            "one untimed run of each. Peak memory is the sum over the process and its decoding processes (shared "
            "pages counted in each); the first row is timed from the command's start, the model's loading "
            "included. This is a virtual machine with neighbours: the same command's speed moves from run to run "
            "by more than some of the differences between pipelines (every run is in the record)."
        )
        header = ["inputs", "model", "runs", "pipeline", "images/s", "vs bare", "peak memory", "first row", "top-1"]
        parts.append(wrap(intro) + "\n" + md_table(header, rows, "llrlrrrrr"))
    return "\n".join(parts) or "Not measured yet: `python3 benchmarks/predict_scale.py`.\n"


def folder_eval_sentence(root: Path) -> str:
    for path in sorted((root / "benchmarks").glob(RECORDS), reverse=True):
        case = json.loads(path.read_text())["cases"].get("cifar-eval")
        if case:
            return wrap(
                f"On the CIFAR-10 JPEG test folders (`cifar10-jpeg/test/<class>/NNNN.jpg`, from `../shared/data`), "
                f"`zoo eval {case['model']} --images cifar10-jpeg/test` gives {percent(case['accuracy'])} on "
                f"{case['images']:,} images; the model's test accuracy is {percent(case['test_accuracy'])} "
                f"(`benchmarks/{path.name}`)."
            )
    return "Not measured yet: `python3 benchmarks/predict_scale.py --cases cifar-eval`.\n"
