"""The training engine, installed as `zoo.training`: one loop for every model, driven by its recipe.

The names below are imported on first use, so a module of this package
(augmentation, distillation) can be reached without importing timm and the whole trainer.
"""

from __future__ import annotations

from zoo.core.lazy import lazy_names

_PUBLIC = {
    "TrainResult": "zoo.training.trainer",
    "TrainingInterrupted": "zoo.training.trainer",
    "train_model": "zoo.training.engine",
}
__all__ = list(_PUBLIC)


__getattr__, __dir__ = lazy_names(__name__, globals(), _PUBLIC)
