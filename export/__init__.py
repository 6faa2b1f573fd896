"""ONNX export and ONNX Runtime inference, installed as `zoo.export`."""
