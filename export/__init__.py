"""ONNX export and ONNX Runtime inference, installed as `zoo.export`.

`zoo.export.runtime` (ONNX Runtime, numpy) imports without torch or the exporter; the names below are
imported on first use, so reaching the runtime through this package does not load them either.
"""

from __future__ import annotations

from zoo.core.lazy import lazy_names

_PUBLIC = {
    "INPUT_NAME": "zoo.export.metadata",
    "OUTPUT_NAME": "zoo.export.metadata",
    "ExportError": "zoo.export.onnx_export",
    "ExportResult": "zoo.export.onnx_export",
    "export_onnx": "zoo.export.onnx_export",
    "OnnxClassifier": "zoo.export.runtime",
}
__all__ = list(_PUBLIC)


__getattr__, __dir__ = lazy_names(__name__, globals(), _PUBLIC)
