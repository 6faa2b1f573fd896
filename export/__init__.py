"""ONNX export and ONNX Runtime inference, installed as `zoo.export`."""

from zoo.export.metadata import INPUT_NAME, OUTPUT_NAME
from zoo.export.onnx_export import ExportError, ExportResult, export_onnx
from zoo.export.runtime import OnnxClassifier

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "ExportError", "ExportResult", "OnnxClassifier", "export_onnx"]
