"""The registry's recorded facts (zoo/core/catalog.json), so that `zoo list` and `zoo info` answer without
importing torch (a torch-free install has no other way to know a model's layers).

    python3 -m zoo.core.catalog    # rewrite the file from the registry after adding or changing a model

The tests rebuild it from the real registry and fail when the file differs; accuracy and weights come
from the shipped-weights manifest. `row` is the one definition of a model's `zoo list` line, `info` of
what `zoo info` shows.
"""

from __future__ import annotations

import difflib
import json
from importlib import resources
from pathlib import Path

from zoo.core import numbers
from zoo.core.errors import ZooError
from zoo.core.files import atomic_write
from zoo.core.numbers import fraction
from zoo.core.patterns import matches
from zoo.core.weights import default_weights, split_tag, tags

CATALOG = "catalog.json"
FIELDS = ("name", "dataset", "family", "params", "budget", "macs")  # a `zoo list` row, with its accuracy and weights


def _entries() -> list[dict[str, object]]:
    return json.loads(resources.files("zoo.core").joinpath(CATALOG).read_text())


def _with_weights(entry: dict[str, object]) -> dict[str, object]:
    shipped = default_weights(str(entry["name"]))
    return {
        **{field: entry[field] for field in FIELDS},
        "accuracy": fraction(shipped.metrics["test_accuracy"]) if shipped else None,
        "weights_present": shipped is not None and shipped.path is not None and shipped.path.is_file(),
    }


def rows(pattern: str | None = None) -> list[dict[str, object]]:
    """Every model matching `pattern` as `zoo list` shows it, in `zoo.list_models` order."""
    return [_with_weights(e) for e in _entries() if not pattern or matches(str(e["name"]), pattern)]


def _entry(name: str) -> dict[str, object]:
    model = split_tag(name)[0]
    entries = {str(e["name"]): e for e in _entries()}
    if model in entries:
        return entries[model]
    close = difflib.get_close_matches(model, list(entries), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "; run `zoo list` to see all"
    raise ZooError(f"unknown model {name!r}{hint}", argument="name")


def model_row(name: str) -> dict[str, object]:
    """One model's `zoo list` line: the registry's facts plus its shipped accuracy and whether weights are present."""
    return _with_weights(_entry(name))


def model_info(name: str) -> dict[str, object]:
    """Everything `zoo info` shows: the per-layer summary measured on the real model (when the catalog was
    built), budget, recipe, preprocessing, architecture arguments, and the shipped weights and their metrics."""
    entry = _entry(name)
    name = str(entry["name"])
    shipped = default_weights(name)
    details = {k: v for k, v in entry.items() if k not in FIELDS}
    return {
        **model_row(name),
        **details,
        "weights": {
            "file": shipped.file if shipped else None,
            "tag": shipped.tag if shipped else None,
            "tags": tags(name),
            "sha256": shipped.sha256 if shipped else None,
            "present": model_row(name)["weights_present"],
        },
        "metrics": numbers.metrics(shipped.metrics) if shipped else {},
    }


def build() -> list[dict[str, object]]:
    """The catalog's content, from the registry and the real models (this imports them, hence torch)."""
    from dataclasses import asdict

    from zoo.core.registry import get_spec, list_models
    from zoo.core.summary import summarize

    entries = []
    for name in list_models():
        spec = get_spec(name)
        layers = summarize(spec.build(), spec.input_shape)
        entry = {field: getattr(spec, field) for field in FIELDS}
        entries.append({
            **entry,
            "description": spec.description,
            "min_params": spec.min_params,
            "classes": list(spec.classes),
            "input_shape": list(spec.input_shape),
            "layers": [
                {"name": r.name, "type": r.kind, "output_shape": list(r.output_shape), "params": r.params,
                 "macs": r.macs}
                for r in layers
            ],
            "recipe": spec.recipe.to_dict(),
            "preprocessing": json.loads(json.dumps(asdict(spec.preprocessing))),
            "tta_flip": spec.tta_flip,
            "tta_shift": spec.tta_shift,
            "arch": json.loads(json.dumps(dict(spec.arch))),
        })  # fmt: skip
    return entries


def main() -> None:
    path = Path(__file__).with_name(CATALOG)
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n"))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
