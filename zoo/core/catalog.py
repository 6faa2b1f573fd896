"""The registry's recorded figures (zoo/core/catalog.json), so that `zoo list` answers without importing torch.

    python3 -m zoo.core.catalog    # rewrite the file from the registry after adding or changing a model

The tests rebuild it from the real registry and fail when the file differs; accuracy and weights come
from the shipped-weights manifest. `row` is the one definition of a model's `zoo list` line.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from zoo.core.errors import ZooError
from zoo.core.files import atomic_write
from zoo.core.patterns import matches
from zoo.core.weights import default_weights

CATALOG = "catalog.json"
FIELDS = ("name", "dataset", "family", "params", "budget", "macs")


def _entries() -> list[dict[str, object]]:
    return json.loads(resources.files("zoo.core").joinpath(CATALOG).read_text())


def _with_weights(entry: dict[str, object]) -> dict[str, object]:
    shipped = default_weights(str(entry["name"]))
    return {
        **entry,
        "accuracy": shipped.metrics["test_accuracy"] if shipped else None,
        "weights_present": shipped is not None and shipped.path is not None and shipped.path.is_file(),
    }


def rows(pattern: str | None = None) -> list[dict[str, object]]:
    """Every model matching `pattern` as `zoo list` shows it, in `zoo.list_models` order."""
    return [_with_weights(e) for e in _entries() if not pattern or matches(str(e["name"]), pattern)]


def row(name: str) -> dict[str, object]:
    """One model's `zoo list` line: the registry's facts plus its shipped accuracy and whether weights are present."""
    for entry in _entries():
        if entry["name"] == name:
            return _with_weights(entry)
    raise ZooError(f"unknown model {name!r}; run `zoo list` to see all", argument="name")


def build() -> list[dict[str, object]]:
    """The catalog's content, from the registry itself (this imports the models, hence torch)."""
    from zoo.core.registry import get_spec, list_models

    return [{field: getattr(get_spec(name), field) for field in FIELDS} for name in list_models()]


def main() -> None:
    path = Path(__file__).with_name(CATALOG)
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(build(), indent=1) + "\n"))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
