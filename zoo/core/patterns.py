"""Model-name patterns, shared by the registry and the torch-free catalog."""

from __future__ import annotations

import fnmatch


def matches(name: str, pattern: str) -> bool:
    """A shell-style pattern (``cnn_*``) matches the whole name; plain text matches anywhere in it."""
    return fnmatch.fnmatchcase(name, pattern if any(c in pattern for c in "*?[") else f"*{pattern}*")
