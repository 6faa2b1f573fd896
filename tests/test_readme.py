"""The README a new user reads: short, with the set-up that CI runs, its model table generated from the manifest,
and links that lead into the documentation site. Its figures are checked where they are made, by
`python3 -m zoo.docs --check` (tests/test_docs.py), not by matching its sentences here."""

from __future__ import annotations

import re
from pathlib import Path

from zoo.core.store import DEFAULT_STORE_URL
from zoo.core.weights import manifest
from zoo.docs.assemble import BLOCK
from zoo.docs.records import nine

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
MAIN_JOB = (
    'python3 -m pip install -e ".[torch]" && zoo train cnn_20k --epochs 2 --data-dir ../shared/data --out '
    "runs/cnn_20k-demo && zoo eval cnn_20k --weights runs/cnn_20k-demo/best.safetensors --data-dir ../shared/data"
)
TESTS = 'python3 -m pip install -e ".[test]" && ZOO_DATA=../shared/data python3 -m pytest'


def test_it_is_read_in_five_minutes():
    assert len(README.splitlines()) <= 250


def test_it_holds_the_two_set_up_commands_as_ci_runs_them():
    lines = README.splitlines()
    assert MAIN_JOB in lines and TESTS in lines


def test_its_model_table_lists_the_nine_default_tags_with_their_accuracy():
    (block,) = [m.group("body") for m in BLOCK.finditer(README) if m.group("name") == "models-readme"]
    rows = [line for line in block.splitlines() if line.startswith("| [`")]
    assert [re.match(r"\| \[`(\w+)`\]", row).group(1) for row in rows] == nine() == sorted(manifest(), key=nine().index)
    for name, row in zip(nine(), rows, strict=True):
        entry = manifest()[name]
        accuracy = entry["tags"][entry["default"]]["metrics"]["test_accuracy"]
        assert f"| {accuracy:.2%} ({entry['default']}) |" in row, row
        assert f"(docs/models/{name}.md)" in row


def test_it_tells_no_history():
    """No seeds, no commit hashes, no earlier tags: the history is told once, on the model pages."""
    assert not re.search(r"\bseeds?\b", README, re.I)
    assert not re.search(r"\b[0-9a-f]{7,40}\b", README)
    assert not re.search(r"\b\w+\.v\d+\b", README)


def test_it_names_the_default_weights_store_and_says_it_is_untried():
    flat = " ".join(README.split())
    assert DEFAULT_STORE_URL in flat and "zoo.core.store.DEFAULT_STORE_URL" in flat
    assert "untried" in flat


def test_every_link_into_the_repository_resolves():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert local
    assert [link for link in local if not (REPO / link).exists()] == []


def test_it_leads_to_a_guide_for_every_command():
    from zoo.cli import app

    commands = {command.name for command in app.registered_commands} | {group.name for group in app.registered_groups}
    for command in commands:
        assert f"(docs/guides/{command}.md)" in README, command
