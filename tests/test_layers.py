"""The layers hold: core never imports an engine or an application, engines never an application.

import-linter's layers contract (pyproject.toml) is checked on a copy of the package laid out as it installs
(training/ and export/ inside zoo/), so that every import is seen, those inside functions included.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="the layer check needs import-linter (the [test] extra)")

REPO = Path(__file__).resolve().parents[1]


def staged_package(root: Path) -> Path:
    """zoo/ with training/ and export/ inside it, as the wheel installs them (pyproject's package-dir)."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "zoo", root / "zoo", ignore=ignore)
    for folder in ("training", "export"):
        shutil.copytree(REPO / folder, root / "zoo" / folder, ignore=ignore)
    return root


def lint(root: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"]
    return subprocess.run(
        [*command, str(REPO / "pyproject.toml"), "--no-cache"], cwd=root, capture_output=True, text=True,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_the_package_keeps_its_layers(tmp_path):
    done = lint(staged_package(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_an_upward_import_inside_a_function_breaks_the_contract(tmp_path):
    root = staged_package(tmp_path)
    with open(root / "zoo" / "core" / "data.py", "a") as module:
        module.write(
            "\n\ndef _upward():\n    from zoo.cli import main  # an application, imported by core\n\n    return main\n"
        )
    done = lint(root)
    assert done.returncode != 0 and "0 kept, 1 broken" in done.stdout
    assert "zoo.core.data -> zoo.cli" in done.stdout
