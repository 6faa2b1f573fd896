"""zoo: small image classifiers at fixed parameter budgets, trained, exported to ONNX and benchmarked.

>>> import zoo
>>> zoo.list_models("cnn_*")
['cnn_10k', 'cnn_20k', 'cnn_50k', 'cnn_100k']
>>> model = zoo.create_model("cnn_20k", pretrained=True)    # eval mode, flip TTA inside, model.pretrained_cfg
>>> logits = model(zoo.transforms("cnn_20k")("examples/3-dress.png")[None])   # what `zoo predict` computes

The public names are imported on first use, so `import zoo` (and `zoo --help`) does not load torch.
"""

from __future__ import annotations

from zoo.core.errors import ZooError
from zoo.core.lazy import lazy_names

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC = {
    "ModelSpec": "zoo.core.spec",
    "get_spec": "zoo.core.registry",
    "list_models": "zoo.core.registry",
    "create_model": "zoo.api",
    "transforms": "zoo.api",
    "evaluate": "zoo.api",
    "model_info": "zoo.core.catalog",  # torch-free: the catalog holds what the real models measured
    "model_row": "zoo.core.catalog",
    "train": "zoo.api",
    "predict": "zoo.prediction",
    "iter_predictions": "zoo.prediction",  # a lazy iterator: millions of files without holding them
    "write_predictions": "zoo.prediction",  # rows to a file as they come, resumable
    "evaluate_images": "zoo.prediction",  # your own labelled photos (an ImageFolder)
    "download": "zoo.core.download",
    "benchmark": "zoo.bench",
    "export_onnx": "zoo.export",
}
__all__ = ["ZooError", *_PUBLIC]


__getattr__, __dir__ = lazy_names(__name__, globals(), _PUBLIC)
