"""The training engine, installed as `zoo.training`: one loop for every model, driven by its recipe.

The names below are imported on first use, so a module of this package (a run's records, augmentation)
can be reached without importing timm and the whole trainer.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "TrainResult": "zoo.training.trainer",
    "TrainingInterrupted": "zoo.training.trainer",
    "train_model": "zoo.training.engine",
}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zoo.training' has no attribute {name!r}")
