"""Rich tables that fit an 80-column terminal: no vertical rules, two spaces between columns, an ASCII rule under
the header, and columns that hold identifiers or numbers never wrap or shorten ("cifar_cnn_best" stays whole)."""

from __future__ import annotations

from rich import box
from rich.table import Table

# Rich's SIMPLE_HEAD with an ASCII rule under the header: the same in a terminal, a pipe or a log file,
# and one byte per column wherever the output is measured.
ASCII_HEAD = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)


def compact_table(*columns: str, title: str | None = None, left: tuple[str, ...] = ()) -> Table:
    """A table with these column headers; columns named in `left` (names, classes) align left, the rest
    (numbers) right. Every column keeps its cells on one line, uncut."""
    table = Table(
        title=title, box=ASCII_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), title_justify="left"
    )
    for column in columns:
        table.add_column(column, justify="left" if column in left else "right", no_wrap=True)
    return table


def si(value: float) -> str:
    """A count in three significant figures with a suffix: 882,200 -> 882K, 118,147,360 -> 118M."""
    for divisor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= divisor:
            scaled = value / divisor
            return f"{scaled:.3g}{suffix}" if scaled < 1000 else f"{scaled:,.0f}{suffix}"
    return f"{value:g}"
