"""ONNX export: validation against PyTorch, metadata round trip, dynamic batch, int8 / fp16, failures."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import zoo
from zoo.cli import main
from zoo.core.errors import WeightsError
from zoo.export import ExportError, OnnxClassifier, export_onnx
from zoo.export import onnx_export as onnx_export_module
from zoo.export.runtime import inference_session


@pytest.fixture(scope="module")
def random_weights(random_checkpoint):
    """Random-init fcn_50k saved as a checkpoint: enough to prove export fidelity, which needs no training."""
    return random_checkpoint("fcn_50k", seed=0)


@pytest.fixture(scope="module")
def trained_weights(tmp_path_factory, data_dir):
    """A quickly trained fcn_50k (about 80% accuracy): accuracy deltas of int8 / fp16 mean something.
    Without its teacher: one epoch says little about distillation, and the figure should not move whenever
    the teacher is re-shipped (the re-shipped cnn_50k left this student at 58%)."""
    result = zoo.train(
        "fcn_50k", epochs=1, limit_train=2000, val_size=500, out=tmp_path_factory.mktemp("run"), progress=False,
        teacher="", distill_weight=0.0,
    )  # fmt: skip
    return result.best_checkpoint


def test_fp32_export_validates_and_carries_its_preprocessing(tmp_path, random_weights, data_dir):
    out = tmp_path / "fcn" / "fcn_50k.onnx"
    result = export_onnx("fcn_50k", weights=random_weights, out=out, validate_images=64)
    assert out.is_file() and result.path == str(out) and result.precision == "fp32"
    assert result.validation["passed"] and result.validation["max_abs_diff"] <= 1e-4
    assert result.validation["top1_agreement"] == 1.0 and set(result.validation["batches"]) == {"batch_1", "batch_64"}

    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    spec = zoo.get_spec("fcn_50k")
    assert meta["model"] == "fcn_50k" and json.loads(meta["classes"]) == list(spec.classes)
    assert json.loads(meta["mean"]) == list(spec.preprocessing.mean) and json.loads(meta["std"]) == list(
        spec.preprocessing.std
    )
    assert json.loads(meta["input_size"]) == [28, 28] and json.loads(meta["channels"]) == 1
    assert json.loads(meta["light_on_dark"]) is True
    assert json.loads(meta["tta_flip"]) is zoo.get_spec(result.model).tta_flip
    assert meta["weights_sha256"] == result.weights_sha256 and len(meta["weights_sha256"]) == 64
    assert {"torch", "onnx", "onnxruntime"} <= set(json.loads(meta["exporter_versions"]))
    assert json.loads(meta["validation"])["fp32"]["passed"] is True

    # Only the batch axis is dynamic; names are stable.
    (graph_input,), (graph_output,) = model.graph.input, model.graph.output
    assert (graph_input.name, graph_output.name) == ("input", "logits")
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [1, 28, 28]

    classifier = OnnxClassifier(out)
    assert classifier.preprocessing == spec.preprocessing and classifier.classes == list(spec.classes)
    reference = zoo.create_model("fcn_50k", weights=random_weights)  # eval mode: flip TTA, as in the graph
    for batch in (1, 3, 17):
        x = torch.randn(batch, 1, 28, 28)
        expected = reference(x)
        np.testing.assert_allclose(classifier.logits(x.numpy()), expected.detach().numpy(), atol=1e-4)


def test_model_zoo_test_data_re_checks(tmp_path, random_weights, data_dir):
    out = tmp_path / "m" / "fcn_50k.onnx"
    result = export_onnx("fcn_50k", weights=random_weights, out=out, validate_images=32)
    # A file the user named gets its companions in one folder named after it, and nothing else beside it.
    companions = tmp_path / "m" / "fcn_50k.test_data"
    assert result.test_data == [str(companions / "test_data_set_0"), str(companions / "test_data_set_1")]
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["fcn_50k.onnx", "fcn_50k.test_data"]
    assert result.validation["batches"]["batch_1"]["images"] == result.validation["batches"]["batch_32"]["images"] == 32
    session = inference_session(out)
    for folder, batch in zip(result.test_data, (1, 8), strict=True):
        tensors = {}
        for name in ("input_0", "output_0"):
            proto = onnx.TensorProto()
            proto.ParseFromString((Path(folder) / f"{name}.pb").read_bytes())
            tensors[name] = onnx.numpy_helper.to_array(proto)
        assert tensors["input_0"].shape == (batch, 1, 28, 28)
        np.testing.assert_allclose(session.run(None, {"input": tensors["input_0"]})[0], tensors["output_0"], atol=1e-4)


def test_fixed_batch(tmp_path, random_weights, data_dir):
    out = tmp_path / "fixed.onnx"
    result = export_onnx("fcn_50k", weights=random_weights, out=out, batch=4, validate_images=10)
    dims = onnx.load(out).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [4, 1, 28, 28] and result.batch == "4"
    assert set(result.validation["batches"]) == {"batch_4"}  # 10 images: the last batch is padded
    assert OnnxClassifier(out).logits(np.zeros((7, 1, 28, 28), np.float32)).shape == (7, 10)


def test_failed_validation_fails_loudly_and_writes_nothing(tmp_path, random_weights, data_dir, monkeypatch):
    monkeypatch.setattr(onnx_export_module, "FP32_MAX_ABS_DIFF", -1.0)  # no graph can pass this
    with pytest.raises(ExportError, match="nothing was written"):
        export_onnx("fcn_50k", weights=random_weights, out=tmp_path / "x" / "m.onnx", validate_images=8)
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_int8_and_fp16_report_their_accuracy_delta(tmp_path, trained_weights, data_dir, caplog):
    with caplog.at_level(logging.WARNING):
        int8 = export_onnx(
            "fcn_50k", weights=trained_weights, out=tmp_path / "q" / "m.onnx", int8=True, validate_images=64,
            test_images=1000, calibration_images=128,
        )  # fmt: skip
    # The per-tensor fallback for the MLP's 1-D batch-norm scales is not news to the user.
    assert not [r for r in caplog.records if "out-of-range for weight" in r.getMessage()]
    model = onnx.load(tmp_path / "q" / "m.onnx")
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    assert {p.key: p.value for p in model.metadata_props}["precision"] == "int8"
    assert int8.reduced["images"] == 1000 and int8.reduced["passed"]
    assert int8.reduced["threshold"] == {"max_accuracy_drop": 0.01} and int8.reduced["accuracy_torch"] > 0.6
    fp16 = export_onnx("fcn_50k", weights=trained_weights, out=tmp_path / "h" / "m.onnx", fp16=True, test_images=1000)
    assert fp16.reduced["passed"] and abs(fp16.reduced["accuracy_delta"]) <= 0.002
    assert fp16.reduced["max_abs_diff"] < 1e-2
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in onnx.load(tmp_path / "h" / "m.onnx").graph.initializer)


def test_untrained_model_needs_weights_or_random_init(tmp_path, unshipped):
    # A model without shipped weights, whichever models ship today.
    unshipped("fcn_50k")
    with pytest.raises(WeightsError, match="ships no trained weights yet.*random_init=True"):
        export_onnx("fcn_50k", out=tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    result = export_onnx("fcn_50k", out=tmp_path / "m.onnx", random_init=True, validate_images=8)
    assert result.weights == "random-init" and result.weights_sha256 == "none"


def test_cli_export_json_and_errors(capsys, tmp_path, random_weights, data_dir):
    out = tmp_path / "cli" / "fcn_50k.onnx"
    argv = ["export", "fcn_50k", "--weights", str(random_weights), "--out", str(out), "--validate-images", "16"]
    assert main([*argv, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["path"] == str(out) and document["validation"]["passed"] and out.is_file()
    assert main(argv) == 0 and "max |Δlogit|" in capsys.readouterr().out
    for bad, fragment in (
        (["export", "fcn_50k", "--batch", "zero"], "--batch"),
        (["export", "fcn_50k", "--int8", "--fp16", "--weights", str(random_weights)], "fp16 or int8"),
        (["export", "fcn_5ok"], "unknown model"),
    ):
        code = main(bad)
        captured = capsys.readouterr()
        assert code != 0 and captured.err.startswith("error: ") and fragment in captured.err
        assert "Traceback" not in captured.err and len(captured.err.strip().splitlines()) == 1


def test_onnx_file_without_metadata_is_refused(tmp_path, random_weights):
    path = tmp_path / "plain.onnx"
    tensor = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["input"], ["logits"])], "plain",
        [tensor("input", onnx.TensorProto.FLOAT, [1, 10])], [tensor("logits", onnx.TensorProto.FLOAT, [1, 10])],
    )  # fmt: skip
    onnx.save(onnx.helper.make_model(graph, ir_version=10, opset_imports=[onnx.helper.make_opsetid("", 18)]), path)
    with pytest.raises(zoo.ZooError, match="no zoo metadata"):
        OnnxClassifier(path)


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.list_models())
def test_every_model_exports_and_validates(tmp_path, name, data_dir):
    """All nine, resnet18_cifar and the tta_flip models included (random weights: fidelity needs no training)."""
    result = export_onnx(name, random_init=True, out=tmp_path / name / f"{name}.onnx", validate_images=128)
    assert result.validation["passed"] and result.validation["max_abs_diff"] <= 1e-4
    meta = {p.key: p.value for p in onnx.load(result.path).metadata_props}
    assert json.loads(meta["tta_flip"]) == zoo.get_spec(name).tta_flip
    fp16 = export_onnx(name, random_init=True, out=tmp_path / "fp16" / f"{name}.onnx", fp16=True, test_images=256)
    assert fp16.reduced["passed"]
