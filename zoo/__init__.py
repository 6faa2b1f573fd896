"""zoo: small image classifiers at fixed parameter budgets, trained, exported to ONNX and benchmarked.

>>> import zoo
>>> zoo.list_models("cnn_*")
['cnn_10k', 'cnn_20k', 'cnn_50k', 'cnn_100k']
>>> model = zoo.create_model("cnn_20k")
"""

from zoo.api import create_model, evaluate, model_info, model_row, train
from zoo.errors import ZooError
from zoo.registry import ModelSpec, get_spec, list_models

__version__ = "0.1.0"
__all__ = [
    "ModelSpec", "ZooError", "create_model", "evaluate", "get_spec", "list_models", "model_info", "model_row", "train",
]  # fmt: skip
