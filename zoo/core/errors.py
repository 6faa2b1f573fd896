"""Errors a user can cause. The CLI turns these into one line on stderr and a non-zero exit.

An error speaks in the Python API's terms and names the arguments it is about: a message marks each one as
`{name}` or `{name=VALUE}`, which reads `name` / `name=VALUE` from Python and `--name` / `--name VALUE` from
the command that was run (zoo.cli.errors). `argument` is the one at fault (by default the first marked).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_MARK = re.compile(r"\{([a-z][a-z0-9_]*)(?:=([^{}]*))?\}")


class ZooError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.template = message
        marked = _MARK.search(message)
        self.argument = argument or (marked.group(1) if marked else None)  # the API argument at fault, if any

    def render(self, spell: Callable[[str, str | None], str]) -> str:
        """The message with each marked argument written by `spell(name, value)`."""
        return _MARK.sub(lambda match: spell(match.group(1), match.group(2)), self.template)

    def __str__(self) -> str:
        return self.render(lambda name, value: name if value is None else f"{name}={value}")


class DataNotFoundError(ZooError):
    """The data set is in none of the places we look."""


class WeightsError(ZooError):
    """A weights file is missing, corrupt, foreign to the model, or fails its hash check."""
