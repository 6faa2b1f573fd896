"""The training engine, installed as `zoo.training`: one loop for every model, driven by its recipe."""

from .engine import TrainResult, train_model

__all__ = ["TrainResult", "train_model"]
