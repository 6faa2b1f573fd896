"""The models: the README's and the home page's model table, the models' index, and a page per model with
its `zoo study` card, its speed per machine and every tag's record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnxruntime

from zoo import study
from zoo.core.catalog import model_row
from zoo.core.weights import manifest
from zoo.docs.benchmarks import FASTEST_HEADER, fastest_cells
from zoo.docs.markdown import md_table, mib, ms, percent, wrap
from zoo.docs.records import (
    Machine,
    benchmark_records,
    default_tag,
    machines,
    nine,
    reference_latency,
    reference_machine,
    tag_record,
)

DATA_SETS = {"fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10 (JPEG)"}


def models_block(root: Path, docs: str) -> str:
    """The nine models from the manifest's default tags and the catalog, with links to their pages under `docs`
    (the site's root as seen from the page that shows the table)."""
    machine = reference_machine(machines(benchmark_records(root)))
    rows, sources = [], set()
    for name in nine():
        facts, tag = model_row(name), default_tag(name)
        measured = reference_latency(machine, name) if machine else None
        if measured:
            sources.add(measured[0].name)
        accuracy = tag_record(name, tag)["metrics"]["test_accuracy"]
        rows.append([
            f"[`{name}`]({docs}models/{name}.md)", f"{accuracy:.2%} ({tag})",
            ms(measured[1]["latency_ms"]["p50"]) if measured else "—", f"{facts['params']:,}", f"{facts['macs']:,}",
            DATA_SETS.get(facts["dataset"], facts["dataset"]),
        ])  # fmt: skip
    header = ["model", "test accuracy (tag)", "latency, batch 1", "parameters", "MACs / image", "data set"]
    records = ", ".join(f"`{name}`" for name in sorted(sources))
    where = (
        f"on [{machine.label}]({docs}benchmarks/{machine.slug}.md) (records {records})"
        if machine
        else "(no benchmark record yet)"
    )
    caption = (
        "Test accuracy of each model's default weights tag on its data set's test set (`weights/manifest.json`). "
        "MACs count one forward pass; the models average their test-time views (image and mirror; six views for "
        "`cifar_cnn_best`), which the latency includes. Latency: ONNX Runtime fp32, batch 1, one thread, median, "
        f"{where}, on the default tag or an earlier tag with the same graph."
    )
    return md_table(header, rows, "lrrrrl") + "\n" + wrap(caption)


def onnx_validation(root: Path, file: str | None) -> str:
    """The fp32 check that `zoo export` recorded in a shipped ONNX file's metadata before writing it."""
    path = root / "weights" / file if file else None
    if path is None or not path.is_file():
        return "—"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    fp32 = json.loads(session.get_modelmeta().custom_metadata_map.get("validation", "{}")).get("fp32")
    if not fp32:
        return "not recorded"
    images = "test images" if "test images" in fp32.get("inputs", "test images") else "random images"
    return f"max \\|Δlogit\\| {fp32['max_abs_diff']:.1e}, top-1 agreement {fp32['top1_agreement']:.0%} on {fp32['images']} {images}"


def _seed_line(record: dict[str, Any]) -> str:
    seeds = record.get("seed_test_accuracies") or {}
    metrics = record["metrics"]
    each = ", ".join(f"seed {seed}: {accuracy:.2%}" for seed, accuracy in seeds.items())
    if len(seeds) > 1 and "test_accuracy_mean" in metrics:
        each += f" (mean {metrics['test_accuracy_mean']:.2%} ± {metrics.get('test_accuracy_std', 0):.2%})"
    return each or "—"


def _recipe_changes(before: dict[str, Any] | None, after: dict[str, Any]) -> str:
    if not after:
        return "not recorded"
    if before is None:
        return "the first tag"
    changed = [f"`{k}` {before.get(k)} → {v}" for k, v in after.items() if k != "seed" and before.get(k) != v]
    return ", ".join(changed) or "none"


def tags_section(root: Path, model: str) -> str:
    """Every tag's record in weights/manifest.json, the default first marked, oldest first."""
    entry = manifest()[model]
    summary, details, previous = [], [], None
    for tag, record in entry["tags"].items():
        default = " (default)" if tag == entry["default"] else ""
        summary.append([
            f"`{model}.{tag}`{default}", record.get("date") or "—", percent(record["metrics"].get("test_accuracy")),
            str(record.get("seed", "—")), record.get("hardware") or "—", (record.get("commit") or "—")[:7],
            mib(record.get("size")), mib(record.get("onnx_size")),
        ])  # fmt: skip
        rows = [
            ["test accuracy per seed", _seed_line(record)],
            ["training time (shipped seed)", f"{record['metrics']['train_seconds']:,.0f} s" if "train_seconds" in record["metrics"] else "—"],
            ["test views", "image and mirror" + (", each shifted one pixel both ways (six)" if record.get("tta_shift") else "") if record.get("tta_flip") else "one"],
            ["architecture arguments", ", ".join(f"`{k}={v}`" for k, v in (record.get("arch") or {}).items()) or "the builder's defaults"],
            ["teacher", f"`{record['teacher']}` (sha256 {record.get('teacher_sha256', '')[:12]}…)" if record.get("teacher") else "none"],
            ["recipe changes from the tag before", _recipe_changes(previous, record.get("recipe") or {})],
            ["ONNX file checked against PyTorch", onnx_validation(root, record.get("onnx_file"))],
            ["sha256", f"`{record['sha256'][:16]}…`"],
        ]  # fmt: skip
        if record.get("run_test_accuracy") is not None:
            rows.insert(
                1, ["the run's own test accuracy", f"{record['run_test_accuracy']:.2%} (the file is stored in float16)"]
            )
        for key, label in (("note", "note"), ("history", "retired file")):
            if record.get(key):
                rows.append([label, record[key]])
        recipe = ", ".join(f"`{k}={v}`" for k, v in (record.get("recipe") or {}).items()) or "not recorded"
        details.append(
            f"### `{model}.{tag}`{default}\n\n" + md_table(["record", "value"], rows)
            + f"\n<details><summary>Full recipe</summary>\n\n{recipe}\n\n</details>\n"
        )  # fmt: skip
        previous = record.get("recipe") or previous
    header = ["tag", "shipped", "test accuracy", "seed", "trained on", "commit", "safetensors", "ONNX"]
    return (
        "## Weights tags\n\nEvery tag's record in `weights/manifest.json`, oldest first. Each stays loadable: "
        f'`zoo.create_model("{model}.TAG", pretrained=True)`.\n\n'
        + md_table(header, summary, "llrrllrr")
        + "\n"
        + "\n".join(details)
    )


def model_page(root: Path, card: str, model: str, found: list[Machine]) -> str:
    """A model's page: its `zoo study` card (with its history), its speed per machine and every tag's record."""
    return card.rstrip("\n") + "\n\n" + speed_section(model, found) + "\n" + tags_section(root, model)


def speed_section(model: str, found: list[Machine]) -> str:
    """The fastest runtime and precision for this model at batch 1 and 256 on each benchmarked machine."""
    rows = []
    for machine in found:
        if cells := fastest_cells(machine, model):
            rows.append([f"[{machine.title}](../benchmarks/{machine.slug}.md)", *cells])
    if not rows:
        return "## Speed\n\nNot benchmarked on its default graph yet.\n"
    return (
        "## Speed\n\nThe fastest runtime and precision on each machine that timed this model's default graph "
        "([how they are picked](../benchmarks/index.md#fastest-runtime-and-precision-per-model)).\n\n"
        + md_table(["machine", *FASTEST_HEADER], rows, "llrrlrr")
    )


def model_pages(root: Path, found: list[Machine]) -> dict[Path, str]:
    studies = {s.name: s for s in study.collect(nine(), root / "docs" / "runs")}
    pages = {}
    for name in nine():
        card = (
            study.model_card(studies[name], root / "docs", root / "docs" / "runs") if name in studies else f"# {name}\n"
        )
        pages[Path("docs/models") / f"{name}.md"] = model_page(root, card, name, found)
    return pages


def models_index_block(root: Path) -> str:
    rows = []
    for name in nine():
        facts, entry = model_row(name), manifest()[name]
        record = tag_record(name, entry["default"])
        rows.append([
            f"[`{name}`]({name}.md)", DATA_SETS.get(facts["dataset"], facts["dataset"]),
            f"{facts['params']:,} / {facts['budget']:,}", f"{facts['macs']:,}",
            f"{record['metrics']['test_accuracy']:.2%}", f"`{entry['default']}` of {len(entry['tags'])}",
            mib(record.get("size")),
        ])  # fmt: skip
    header = ["model", "data set", "parameters / budget", "MACs / image", "test accuracy", "default tag", "weights"]
    return md_table(header, rows, "llrrrlr")
