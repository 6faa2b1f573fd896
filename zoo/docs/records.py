"""The records the documentation is generated from: the manifest's tags, and the benchmark records grouped
by the machine that measured them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.core.registry import list_models
from zoo.core.weights import manifest, tag_of


def nine() -> list[str]:
    """The models that ship weights, in the registry's order."""
    return [name for name in list_models() if name in manifest()]


def tag_record(model: str, tag: str) -> dict[str, Any]:
    return manifest()[model]["tags"][tag]


def default_tag(model: str) -> str:
    return manifest()[model]["default"]


def same_graph(model: str, tag: str | None) -> bool:
    """Whether weights `tag` run the default tag's graph (same architecture and test views), so that their
    speed is the default's: latency depends on the graph, not on the values of the weights."""
    if tag is None:
        return False
    keys = ("arch", "tta_flip", "tta_shift")
    record, default = tag_record(model, tag), tag_record(model, default_tag(model))
    return all(record.get(k) == default.get(k) for k in keys)


@dataclass(frozen=True)
class Record:
    """One `zoo benchmark --save-json` document: benchmarks/results-NAME.json."""

    path: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def date(self) -> str:
        return self.data["environment"]["date"]

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.data["rows"]

    def measured(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if not row.get("skipped")]


def benchmark_records(root: Path) -> list[Record]:
    """Every benchmark record under benchmarks/, oldest first; the other results files (load tests, sizes)
    hold other formats and are read where they are shown."""
    records = []
    for path in sorted((root / "benchmarks").glob("results-*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "rows" in data and "environment" in data:
            records.append(Record(path, data))
    return sorted(records, key=lambda record: (record.date, record.name))


@dataclass
class Machine:
    """The records measured on one kind of machine: the same CPU model, family/model, core count and GPU."""

    slug: str
    label: str  # the CPU (and GPU), its cores, vector and matrix units, family/model numbers
    title: str  # shorter, for the navigation
    records: list[Record] = field(default_factory=list)


def _machine_key(record: Record) -> tuple:
    environment = record.data["environment"]
    cpu = environment.get("cpu") or {}
    gpu = (environment.get("gpu") or {}).get("name")
    return cpu.get("model"), cpu.get("family_model"), environment.get("cores"), gpu


def _isa(flags: set[str]) -> tuple[str, str]:
    """The widest vector and matrix units a CPU reports: words for a label, and a short name."""
    if "amx_tile" in flags:
        return "AVX-512 and AMX", "AMX"
    if "avx512f" in flags:
        extras = [name for flag, name in (("avx512_vnni", "VNNI"), ("avx512_bf16", "BF16")) if flag in flags]
        return "AVX-512" + (f" with {' and '.join(extras)}" if extras else ""), "AVX-512"
    return ("AVX2", "AVX2") if "avx2" in flags else ("no AVX2", "CPU")


def cpu_name(model: str) -> str:
    return " ".join(re.sub(r"\((R|TM)\)|\bProcessor\b|\bCPU\b", " ", model or "unknown CPU").split())


def machines(records: list[Record]) -> list[Machine]:
    """The records grouped by machine, each machine named from its records (a slug for its page, a label)."""
    groups: dict[tuple, list[Record]] = {}
    for record in records:
        groups.setdefault(_machine_key(record), []).append(record)
    found = []
    for (cpu, family_model, cores, gpu), members in groups.items():
        flags = {flag for record in members for flag in record.data["environment"]["cpu"].get("flags", [])}
        isa, short = _isa(flags)
        name = cpu_name(cpu)
        label = f"{name}, {cores} cores, {isa} (family/model {family_model})"
        title = f"{name}, {cores} cores, {short}"
        # The slug names the page: from the CPU's numbers, which a newer record's longer flag list leaves alone.
        slug = f"{name.split()[-1].lower()}-{cores}core-{(family_model or 'unknown').replace('/', '-')}"
        if gpu:
            label, title, slug = f"{gpu} on {name}, {cores} cores", gpu, gpu.split()[-1].lower()
        found.append(Machine(slug, label, title, members))
    titles = [m.title for m in found]
    for machine in found:
        if titles.count(machine.title) > 1:  # two CPUs alike in name, cores and units: their numbers tell them apart
            machine.title += f" ({_machine_key(machine.records[0])[1]})"
    return sorted(found, key=lambda m: m.slug)


def weights_label(model: str, weights: str) -> str:
    if weights == "random-init":
        return "random init"
    tag = tag_of(model, weights) if model in manifest() else None
    return tag or f"sha256 {weights[:12]}…, not a shipped tag"


def default_graph_rows(machine: Machine, model: str) -> dict[tuple, tuple[Record, dict[str, Any]]]:
    """The machine's measurements of `model` running its default tag's graph, per (backend, threads, batch):
    the newest record's where several measured the same."""
    chosen = {}
    for record in machine.records:  # oldest first: a newer record replaces an older one's row
        for row in record.measured():
            if (
                row["model"] == model
                and row["weights"] != "random-init"
                and same_graph(model, tag_of(model, row["weights"]))
            ):
                chosen[(row["backend"], row["threads"], row["batch_size"])] = (record, row)
    return chosen


def reference_latency(machine: Machine, model: str) -> tuple[Record, dict[str, Any]] | None:
    """ONNX Runtime fp32, batch 1, one thread: the README's latency."""
    return default_graph_rows(machine, model).get(("onnxruntime", 1, 1))


def reference_machine(found: list[Machine]) -> Machine | None:
    """The machine whose records time the most models' default graphs on ONNX Runtime at batch 1 (the newest
    records win a tie)."""
    scored = [(sum(reference_latency(m, name) is not None for name in nine()), max(r.date for r in m.records), m)
              for m in found]  # fmt: skip
    best = max(scored, key=lambda item: item[:2], default=None)
    return best[2] if best and best[0] else None
