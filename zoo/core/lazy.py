"""Public names imported on first use, so a package's face loads nothing heavy (torch, timm, onnx) until
one of its names is asked for: `import zoo` and `zoo --help` stay fast."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

from zoo.core.extras import missing_extra


def lazy_names(package: str, namespace: dict, public: Mapping[str, str]) -> tuple[Callable, Callable]:
    """`__getattr__` and `__dir__` for a package whose `public` names (name -> defining module) load lazily."""

    def __getattr__(name: str):
        if name in public:
            try:
                module = importlib.import_module(public[name])
            except ModuleNotFoundError as error:
                raise (missing_extra(error, f"{package}.{name}") or error) from error
            value = getattr(module, name)
            namespace[name] = value  # later look-ups skip this function
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted([*namespace, *public])

    return __getattr__, __dir__
