"""Where a result came from: the source commit and the library versions, as run records and exports store them."""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path


def library_versions(*modules: str) -> dict[str, str]:
    """`module.__version__` of each named module (imported if it is not yet), e.g. ("torch", "timm")."""
    return {name: str(importlib.import_module(name).__version__) for name in modules}


def git_commit() -> str:
    """The commit of the source tree this code runs from, or "unknown" outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"
