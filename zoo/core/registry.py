"""The model registry: one `ModelSpec` per name, declared as data beside each model's code.

A name goes through one path: name -> ModelSpec -> builder -> weights (sha256-checked) -> model.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

import zoo.core.models  # noqa: F401  (registers every model's spec)
from zoo.core.errors import ZooError
from zoo.core.patterns import matches
from zoo.core.spec import ModelSpec, registered
from zoo.core.weights import split_tag

__all__ = ["ModelSpec", "get_spec", "list_models", "registry"]


def registry() -> Mapping[str, ModelSpec]:
    return registered()


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, optionally filtered by a shell-style pattern (``cnn_*``) or substring."""
    # Grouped the way people compare them: data set, then family, then size; the studies' reference
    # networks (family "ref") after the zoo's own models.
    order = {"fashion_mnist": 0, "cifar10": 1}
    specs = sorted(
        registry().values(), key=lambda s: (s.family == "ref", order.get(s.dataset, 9), s.family != "fcn", s.params)
    )
    return [spec.name for spec in specs if not pattern or matches(spec.name, pattern)]


def get_spec(name: str) -> ModelSpec:
    """The spec of a model name; a weights tag (`cnn_50k.v1`) names the same model."""
    specs = registry()
    model = split_tag(name)[0]
    if model not in specs:
        close = difflib.get_close_matches(model, list(specs), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known models: {', '.join(specs)}"
        raise ZooError(f"unknown model {name!r}{hint}", argument="name")
    return specs[model]
