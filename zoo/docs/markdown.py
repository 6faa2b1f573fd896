"""Markdown tables, wrapped paragraphs and the units the generated pages print figures in."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable


def md_table(header: list[str], rows: Iterable[list[str]], align: str = "") -> str:
    """A Markdown table; `align` has one letter per column, l or r (left by default)."""
    rule = ["---:" if align[i : i + 1] == "r" else "---" for i in range(len(header))]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines) + "\n"


def wrap(text: str) -> str:
    """A paragraph wrapped for a plain terminal (Markdown joins the lines again)."""
    return textwrap.fill(text, width=110, break_long_words=False, break_on_hyphens=False) + "\n"


def ms(value: float) -> str:
    return f"{value:.2f} ms" if value >= 10 else f"{value:.3f} ms"


def mib(size: int | None) -> str:
    if size is None:
        return "—"
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.0f} KiB"


def percent(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}%}"
