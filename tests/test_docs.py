"""`python3 -m zoo.docs`: the README's and the site's measured figures are the records', and `--check` says when
one is not. These replace tests that matched the README's sentences: a figure is checked where it is made."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

import zoo.core.weights
import zoo.docs.deployment
import zoo.docs.models
import zoo.docs.records
from zoo.docs.__main__ import main
from zoo.docs.assemble import fill
from zoo.docs.benchmarks import fastest_block
from zoo.docs.models import models_block
from zoo.docs.records import benchmark_records, machines, nine

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("list", "info", "train", "eval", "export", "predict", "download", "serve", "benchmark", "tune", "plot",
            "study", "experiment")  # fmt: skip


def test_check_passes_on_the_committed_files(capsys):
    assert main(["--check", "--root", str(REPO)]) == 0, capsys.readouterr().out


def test_check_fails_after_one_accuracy_in_the_manifest_is_changed_by_hand(monkeypatch, capsys):
    edited = copy.deepcopy(json.loads((REPO / "weights" / "manifest.json").read_text()))
    entry = edited["cnn_20k"]
    entry["tags"][entry["default"]]["metrics"]["test_accuracy"] += 0.0001
    # every reader of the manifest: the core, and each zoo.docs module that imports it
    for reader in (zoo.core.weights, zoo.docs.records, zoo.docs.models, zoo.docs.deployment):
        monkeypatch.setattr(reader, "manifest", lambda: edited)
    assert main(["--check", "--root", str(REPO)]) == 1
    stale = capsys.readouterr().out.splitlines()
    assert all(line.startswith("stale: ") for line in stale)
    named = {line.split()[1] for line in stale}
    assert {"README.md", "docs/index.md", "docs/models/cnn_20k.md"} <= named
    assert "docs/models/cnn_10k.md" not in named  # one line per stale file, and only those


def test_a_new_benchmark_record_is_picked_up_on_its_machine(tmp_path):
    """A record of other runtimes (OpenVINO, say) measured on a known machine joins that machine's page and can
    win its fastest table, whatever its file is called."""
    (tmp_path / "benchmarks").mkdir()
    for path in (REPO / "benchmarks").glob("results-xeon-2core-*.json"):
        shutil.copy(path, tmp_path / "benchmarks")
    record = json.loads((REPO / "benchmarks" / "results-xeon-2core-resnet18_cifar.json").read_text())
    record["environment"]["date"] = "2099-01-01T00:00:00Z"
    for row in record["rows"]:
        row["backend"], row["precision"] = "openvino-bf16", "bf16"
        row["latency_ms"] = {**row["latency_ms"], "p50": row["latency_ms"]["p50"] / 100}
        row["throughput"] *= 100
    (tmp_path / "benchmarks" / "results-anything-new.json").write_text(json.dumps(record))
    found = machines(benchmark_records(tmp_path))
    (amx,) = [m for m in found if any(r.name == "results-anything-new.json" for r in m.records)]
    assert {r.name for r in amx.records} >= {"results-xeon-2core-resnet18_cifar.json", "results-anything-new.json"}
    row = next(line for line in fastest_block([amx]).splitlines() if line.startswith("| `resnet18_cifar`"))
    assert row.count("OpenVINO bf16") == 2, row


def test_the_readme_table_names_its_reference_cpu_and_records():
    block = models_block(REPO, "docs/")
    assert "ONNX Runtime fp32, batch 1, one thread, median, on [" in " ".join(block.split())
    assert "(docs/benchmarks/" in block and "`results-" in block
    assert len([line for line in block.splitlines() if line.startswith("| [`")]) == len(nine()) == 9


def test_an_unknown_block_is_an_error():
    with pytest.raises(SystemExit, match="unknown generated block 'nonsense'"):
        fill("<!-- zoo.docs nonsense -->\n<!-- /zoo.docs nonsense -->\n", {}, "page.md")


def test_the_site_has_a_page_per_model_and_per_command():
    nav = (REPO / "mkdocs.yml").read_text()
    for name in nine():
        assert (REPO / "docs" / "models" / f"{name}.md").is_file() and f"models/{name}.md" in nav
    for command in COMMANDS:
        assert (REPO / "docs" / "guides" / f"{command}.md").is_file() and f"guides/{command}.md" in nav


def test_every_guide_shows_captured_output():
    for command in COMMANDS:
        guide = (REPO / "docs" / "guides" / f"{command}.md").read_text()
        assert f'--8<-- "{command}.txt"' in guide, command
        output = REPO / "docs" / "guides" / "output" / f"{command}.txt"
        assert output.read_text().startswith("$ zoo "), command
