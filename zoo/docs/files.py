"""The generated files that are not plain text: a link to a record, and a table another command writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Link:
    """A symbolic link to a record outside docs/ (a benchmark plot), so that the site can show it."""

    target: Path


@dataclass(frozen=True)
class Regenerated:
    """A table that another command writes; `write` rewrites it and its companions (a plot) when stale."""

    text: str
    write: Callable[[], Any]
