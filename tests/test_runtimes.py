"""The second CPU runtime: OpenVINO reads the shipped ONNX files with their metadata and, in f32, answers as
ONNX Runtime does, image for image; bf16 stays within a fraction of a point."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest

from zoo.core.datafiles import load_arrays
from zoo.core.errors import ZooError
from zoo.core.weights import shipped_weights
from zoo.export.runtime import OnnxClassifier

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fashion_test(data_dir):
    arrays, _ = load_arrays("fashion_mnist", data_dir)
    return arrays["test_x"], arrays["test_y"]


def test_openvino_f32_gives_onnxruntime_s_top1_on_the_whole_test_set(fashion_test):
    pytest.importorskip("openvino")
    images, labels = fashion_test
    onnx = shipped_weights("cnn_20k").onnx_verified()
    answers = {}
    for runtime in ("onnxruntime", "openvino", "openvino-bf16"):
        classifier = OnnxClassifier(onnx, runtime=runtime)
        assert classifier.name == "cnn_20k" and classifier.classes[3] == "Dress"  # metadata read by either runtime
        answers[runtime] = classifier.logits(classifier.normalize(images)).argmax(1)
    assert (answers["openvino"] == answers["onnxruntime"]).all()
    accuracy = {runtime: float((top1 == labels).mean()) for runtime, top1 in answers.items()}
    assert accuracy["onnxruntime"] == pytest.approx(shipped_weights("cnn_20k").metrics["test_accuracy"], abs=0.002)
    assert abs(accuracy["openvino-bf16"] - accuracy["onnxruntime"]) <= 0.005


def test_a_missing_openvino_is_one_line_naming_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == "openvino" or name.startswith("openvino."):
            raise ModuleNotFoundError("No module named 'openvino'", name="openvino")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    with pytest.raises(ZooError, match=r'\[openvino\] extra: python3 -m pip install "zoo-classifiers\[openvino\]"'):
        OnnxClassifier(shipped_weights("cnn_20k").onnx_verified(), runtime="openvino")


def test_an_unknown_runtime_names_the_choices():
    with pytest.raises(ZooError, match="choose one of onnxruntime, openvino, openvino-bf16"):
        OnnxClassifier(shipped_weights("cnn_20k").onnx_verified(), runtime="tensorrt")


def test_a_file_openvino_cannot_read_is_one_line(tmp_path):
    pytest.importorskip("openvino")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(ZooError, match="is not a loadable ONNX model") as caught:
        OnnxClassifier(bad, runtime="openvino")
    assert "\n" not in str(caught.value)


@pytest.fixture(scope="module")
def cifar_jpegs(data_dir, tmp_path_factory):
    """The first 30 test JPEGs of each CIFAR-10 class, extracted as they are stored."""
    import tarfile

    folder = tmp_path_factory.mktemp("cifar")
    with tarfile.open(data_dir / "cifar10-jpeg.tar.gz") as archive:
        taken: dict[str, int] = {}
        for member in archive:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) >= 3 and parts[-3] == "test":
                if taken.get(parts[-2], 0) < 30:
                    taken[parts[-2]] = taken.get(parts[-2], 0) + 1
                    archive.extract(member, folder, filter="data")
    return sorted(str(p) for p in folder.rglob("*.jpg"))


def test_predict_on_openvino_gives_onnxruntime_s_top1_file_for_file(cifar_jpegs):
    pytest.importorskip("openvino")
    import zoo

    assert len(cifar_jpegs) == 300
    default = zoo.predict(cifar_jpegs, model="cifar_cnn_best")
    openvino = zoo.predict(cifar_jpegs, model="cifar_cnn_best", runtime="openvino")
    assert {p.backend for p in openvino} == {"openvino"} and {p.backend for p in default} == {"onnxruntime"}
    assert [p.top[0]["class"] for p in openvino] == [p.top[0]["class"] for p in default]


def test_streamed_rows_and_folder_scores_on_openvino_are_onnxruntime_s(cifar_jpegs, tmp_path):
    """The streaming path (`zoo predict DIR -r --out`, decoding processes, full batches) and `zoo eval --images`
    take the runtime too: the same files in the same order, the same top-1, each row naming its runtime."""
    pytest.importorskip("openvino")
    from zoo.cli import main
    from zoo.prediction import evaluate_images

    root = Path(cifar_jpegs[0]).parents[1]  # test/<class>/NNNN.jpg: an ImageFolder
    rows = {}
    for runtime in ("onnxruntime", "openvino"):
        out = tmp_path / f"{runtime}.jsonl"
        argv = ["predict", str(root), "-r", "--model", "cifar_cnn_best", "--runtime", runtime, "--out", str(out)]
        assert main([*argv, "--batch-size", "64", "--workers", "2"]) == 0
        rows[runtime] = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["file"] for r in rows["openvino"]] == [r["file"] for r in rows["onnxruntime"]] == cifar_jpegs
    assert {r["backend"] for r in rows["openvino"]} == {"openvino"}
    assert [r["top"][0]["class"] for r in rows["openvino"]] == [r["top"][0]["class"] for r in rows["onnxruntime"]]
    scores = {runtime: evaluate_images(root, "cifar_cnn_best", runtime=runtime) for runtime in rows}
    assert scores["openvino"].confusion_matrix == scores["onnxruntime"].confusion_matrix
    assert scores["openvino"].accuracy > 0.8


def test_predict_with_a_runtime_that_is_not_installed_is_one_line(monkeypatch, capsys):
    import importlib.util

    from zoo.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    assert main(["predict", "--runtime", "openvino", str(REPO / "examples" / "3-dress.png")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and '"zoo-classifiers[openvino]"' in lines[0]
    assert main(["predict", "--runtime", "openvino", "--backend", "torch", str(REPO / "examples" / "3-dress.png")]) == 2
