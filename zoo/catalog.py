"""The registry's recorded figures (zoo/catalog.json), so that `zoo list` answers without importing torch.

    python3 -m zoo.catalog    # rewrite the file from the registry after adding or changing a model

The tests rebuild it from the real registry and fail when the file differs; accuracy and weights come
from the shipped-weights manifest, as for `zoo.model_row`.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from zoo.files import atomic_write, shipped_weights_path
from zoo.registry import matches, shipped_weights_manifest

CATALOG = "catalog.json"
FIELDS = ("name", "dataset", "family", "params", "budget", "macs")


def rows(pattern: str | None = None) -> list[dict[str, object]]:
    """`zoo.model_row` for every model matching `pattern`, in `zoo.list_models` order, read from the catalog."""
    catalog = json.loads(resources.files("zoo").joinpath(CATALOG).read_text())
    manifest = shipped_weights_manifest()
    found = []
    for entry in catalog:
        if pattern and not matches(entry["name"], pattern):
            continue
        shipped = manifest.get(entry["name"])
        found.append({
            **entry,
            "accuracy": shipped["metrics"]["test_accuracy"] if shipped else None,
            "weights_present": shipped is not None and shipped_weights_path(f"{entry['name']}.safetensors").is_file(),
        })  # fmt: skip
    return found


def build() -> list[dict[str, object]]:
    """The catalog's content, from the registry itself (this imports the models, hence torch)."""
    from zoo.registry import get_spec, list_models

    return [{field: getattr(get_spec(name), field) for field in FIELDS} for name in list_models()]


def main() -> None:
    path = Path(__file__).with_name(CATALOG)
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(build(), indent=1) + "\n"))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
