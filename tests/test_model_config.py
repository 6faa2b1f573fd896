"""A model carries its own config: `model.pretrained_cfg`, `zoo.transforms(name)` and flip TTA in eval mode,
so `model(transform(image)[None])` is what `zoo predict` computes and what the published accuracy measures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from zoo.cli import main
from zoo.core.errors import DataNotFoundError, WeightsError

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.png"))
NAME = "cnn_20k"


@pytest.fixture(scope="module")
def model():
    return zoo.create_model(NAME, pretrained=True)


def product_photo(path: Path) -> Path:
    """A dark trouser photographed on light paper, large and off-centre: the photo recipe has work to do."""
    original = np.asarray(Image.open(EXAMPLES[1]), dtype=np.uint8)
    photo = Image.new("RGB", (400, 300), (235, 232, 228))
    garment = Image.fromarray(255 - original).convert("RGB").resize((168, 168), Image.Resampling.BICUBIC)
    photo.paste(garment, (40, 90), Image.fromarray(original).resize((168, 168), Image.Resampling.BICUBIC))
    photo.save(path, quality=90)
    return path


def test_pretrained_cfg_says_how_to_run_the_model(model):
    spec = zoo.get_spec(NAME)
    cfg = model.pretrained_cfg
    assert cfg["model"] == NAME and cfg["dataset"] == "fashion_mnist" and cfg["classes"] == list(spec.classes)
    assert cfg["input_size"] == [1, 28, 28] and cfg["mean"] == [0.286] and cfg["std"] == [0.353]
    assert cfg["light_on_dark"] is True and cfg["tta_flip"] is True
    assert cfg["weights_sha256"] == spec.weights_sha256 and cfg["photo_recipe"].startswith("zoo.light_on_dark/3")
    assert not model.training
    # The state dict is the bare network's, so checkpoints round-trip with or without the wrapper.
    assert set(model.state_dict()) == set(spec.build().state_dict())


def test_eval_mode_averages_the_mirror_and_train_mode_does_not():
    model = zoo.create_model(NAME, pretrained=True)  # its own: train mode updates batch-norm statistics
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        plain, mirrored = model.network(x), model.network(x.flip(-1))
        torch.testing.assert_close(model(x), (plain + mirrored) / 2)
        model.train()
        torch.testing.assert_close(model(x), model.network(x))


def test_the_one_liner_gives_zoo_predicts_answers(model, tmp_path):
    transform = zoo.transforms(NAME)
    inputs = [*EXAMPLES, product_photo(tmp_path / "trouser.jpg")]
    predictions = zoo.predict(inputs, model=NAME)
    for path, prediction in zip(inputs, predictions, strict=True):
        with torch.no_grad():
            probabilities = model(transform(path)[None]).softmax(1)[0]
        best = int(probabilities.argmax())
        assert model.pretrained_cfg["classes"][best] == prediction.top[0]["class"], path.name
        assert probabilities[best].item() == pytest.approx(prediction.top[0]["probability"], abs=1e-5)
    assert predictions[-1].top[0]["class"] == "Trouser"
    # PIL images and arrays go through the same recipe as files.
    image = Image.open(EXAMPLES[3])
    torch.testing.assert_close(transform(image), transform(EXAMPLES[3]))
    torch.testing.assert_close(transform(np.asarray(image)), transform(EXAMPLES[3]))


def test_the_one_liner_reproduces_the_shipped_accuracy(model, fashion_mnist):
    """The transform passes data-set images through unchanged, except the few with a light border (22 of
    10,000), which it brings to the data set's convention: the one-liner must predict exactly like the data
    set's own preprocessing on all the others, and so reach the shipped accuracy within those few images."""
    from zoo.core.preprocess import normalize

    transform = zoo.transforms(NAME)
    test = fashion_mnist.test
    with torch.no_grad():
        batch = torch.stack([transform(image[0].numpy()) for image in test.images])
        reference = normalize(test.images, zoo.get_spec(NAME).preprocessing)
        changed = (batch - reference).abs().amax(dim=(1, 2, 3)) > 1e-5
        predicted, expected = model(batch).argmax(1), model(reference).argmax(1)
    assert changed.sum() <= 30  # 22 measured
    assert torch.equal(predicted[~changed], expected[~changed])
    accuracy = (predicted == test.labels).float().mean().item()
    tolerance = (changed.sum().item() + 2) / len(test.labels)  # + 2: fp32 batching noise, as before
    assert accuracy == pytest.approx(zoo.get_spec(NAME).metrics["test_accuracy"], abs=tolerance)


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("run") / "cnn_10k"
    zoo.train("cnn_10k", epochs=1, limit_train=2000, val_size=500, out=out, data_dir=data_dir, progress=False)
    return out


def test_a_resumable_checkpoint_loads_wherever_weights_load(interrupted_run, tmp_path, capsys):
    last, best = interrupted_run / "last.safetensors", interrupted_run / "best.safetensors"
    from_last = zoo.create_model(weights=last)  # the checkpoint names its model
    assert from_last.pretrained_cfg["model"] == "cnn_10k"
    best_weights = zoo.create_model(weights=best).state_dict().values()
    for (key, a), b in zip(from_last.state_dict().items(), best_weights, strict=True):
        assert torch.equal(a, b), key  # one epoch, no EMA: the last weights are the best ones
    assert main(["eval", "--weights", str(last), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "cnn_10k" and report["accuracy"] == zoo.evaluate(weights=best).accuracy
    assert zoo.export_onnx(weights=last, out=tmp_path / "m.onnx", validate_images=16).model == "cnn_10k"
    (prediction,) = zoo.predict(EXAMPLES[0], weights=last)
    assert prediction.model == "cnn_10k" and prediction.error is None


def test_a_checkpoint_of_another_architecture_is_refused_in_one_short_line(tmp_path, capsys):
    from zoo.core.checkpoint import save_checkpoint

    foreign = tmp_path / "foreign.safetensors"
    save_checkpoint(foreign, zoo.create_model("resnet18_cifar").state_dict(), {"model": "cifar_cnn_best"})
    with pytest.raises(WeightsError, match=r"does not fit cifar_cnn_best: missing 39 tensor\(s\): 0.bias"):
        zoo.create_model(weights=foreign)
    assert main(["eval", "--weights", str(foreign)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and len(error) < 400


def test_export_validates_without_the_data_set(tmp_path, monkeypatch, random_checkpoint):
    monkeypatch.setenv("ZOO_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    weights = random_checkpoint("cnn_10k")
    result = zoo.export_onnx(weights=weights, out=tmp_path / "m.onnx", validate_images=16)
    assert result.validation["passed"] and "seeded random images" in result.validation["inputs"]
    assert result.validation["accuracy_torch"] is None  # random images have no labels
    with pytest.raises(DataNotFoundError, match="int8 export measures accuracy on the test set"):
        zoo.export_onnx(weights=weights, out=tmp_path / "q.onnx", int8=True)


@pytest.mark.parametrize(
    "argv",
    [["list"], ["info", "resnet18_cifar"], ["info", "cifar_cnn_best"], ["eval", "cnn_10k"]],
    ids=["list", "info-resnet", "info-cifar-cnn", "eval"],
)
def test_tables_fit_80_columns_without_cutting_anything(argv, capsys, monkeypatch, data_dir):
    from zoo import cli

    monkeypatch.setattr(cli.out, "width", 80)
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert max(map(len, text.splitlines())) <= 80 and "…" not in text
    names = zoo.list_models() if argv == ["list"] else [argv[1]]
    assert all(name in text for name in names)
    if argv[0] == "eval":
        assert all(f"{i} {c}" in text for i, c in enumerate(zoo.get_spec("cnn_10k").classes))


def test_the_catalog_that_zoo_list_reads_is_the_registry():
    from zoo.core import catalog

    assert json.loads((Path(catalog.__file__).with_name(catalog.CATALOG)).read_text()) == catalog.build()
    assert catalog.rows() == [zoo.model_row(name) for name in zoo.list_models()]
    assert catalog.rows("cnn_*") == [zoo.model_row(name) for name in zoo.list_models("cnn_*")]


@pytest.mark.parametrize(
    "argv", [["--help"], ["list"], ["predict", str(EXAMPLES[3]), "--json"]], ids=["help", "list", "predict"]
)
def test_commands_that_need_no_torch_do_not_import_it(argv):
    """--help, list (from the catalog) and predict with a shipped model (its ONNX file ships beside the weights)."""
    import subprocess
    import sys

    code = f"import sys; from zoo.cli import main; main({argv!r}); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip().endswith("False"), result.stderr
