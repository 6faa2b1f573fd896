"""zoo: small image classifiers at fixed parameter budgets, trained, exported to ONNX and benchmarked.

>>> import zoo
>>> zoo.list_models("cnn_*")
['cnn_10k', 'cnn_20k', 'cnn_50k', 'cnn_100k']
>>> model = zoo.create_model("cnn_20k")
"""

from zoo.api import create_model, evaluate, model_info, model_row, train
from zoo.bench import benchmark
from zoo.errors import ZooError
from zoo.predict import predict
from zoo.registry import ModelSpec, get_spec, list_models

__version__ = "0.1.0"
__all__ = [
    "ModelSpec", "ZooError", "create_model", "evaluate", "get_spec", "list_models", "model_info", "model_row", "predict", "train",
    "export_onnx", "benchmark",
]  # fmt: skip


def export_onnx(name: str, **options):
    """Export and validate a model as ONNX; see zoo.export.export_onnx (imported lazily: it loads onnx)."""
    from zoo.export import export_onnx as _export_onnx

    return _export_onnx(name, **options)
