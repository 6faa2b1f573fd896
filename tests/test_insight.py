"""`zoo plot`: every picture is drawn from the real model and data, for a CNN, an MLP and a CIFAR-10 model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from zoo.cli import main
from zoo.insight import plot_confusion, plot_curves, plot_features, plot_filters, plot_saliency

REPO = Path(__file__).resolve().parents[1]
DRESS = REPO / "examples" / "3-dress.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
pytest.importorskip("captum", reason='zoo plot needs the [plot] extra: pip install -e ".[plot]"')


def _is_png(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        return image.size


def test_cli_draws_every_picture_of_a_cnn(data_dir, capsys, tmp_path):
    commands = {
        "confusion": ["confusion", "cnn_20k"],
        "errors": ["errors", "cnn_20k", "--count", "8"],
        "filters": ["filters", "cnn_20k"],
        "features": ["features", "cnn_20k", str(DRESS)],
        "saliency": ["saliency", "cnn_20k", str(DRESS)],
        "curves": ["curves", str(REPO / "docs/runs/cnn_20k/seed0"), str(REPO / "docs/runs/cnn_20k/seed1")],
    }
    for kind, argv in commands.items():
        out = tmp_path / f"{kind}.png"
        assert main(["plot", *argv, "--out", str(out)]) == 0  # the data set: $ZOO_DATA
        width, height = _is_png(out)
        assert width > 300 and height > 150, kind
        assert f"wrote {out}" in capsys.readouterr().out.replace("\n", "")


def test_confusion_agrees_with_eval_and_names_the_most_confused_pair(data_dir, capsys):
    plot = plot_confusion("cnn_20k", data_dir=data_dir, out="c.png")
    evaluation = zoo.evaluate("cnn_20k", data_dir=data_dir)
    assert plot.facts["accuracy"] == pytest.approx(evaluation.accuracy)
    matrix = evaluation.confusion_matrix
    classes = list(evaluation.per_class)
    worst = max(((i, j) for i in range(10) for j in range(10) if i != j), key=lambda ij: matrix[ij[0]][ij[1]])
    top = plot.facts["confused_pairs"][0]
    assert (top["true"], top["predicted"], top["count"]) == (
        classes[worst[0]],
        classes[worst[1]],
        matrix[worst[0]][worst[1]],
    )
    assert main(["plot", "confusion", "cnn_20k", "--data-dir", str(data_dir), "--out", "c.png"]) == 0
    assert f"{top['true']}" in capsys.readouterr().out


def test_errors_are_wrong_and_sorted_by_confidence(data_dir):
    from zoo.insight import plot_errors

    plot = plot_errors("cnn_20k", data_dir=data_dir, out="e.png", count=6)
    shown = plot.facts["shown"]
    assert len(shown) == 6 and all(s["true"] != s["predicted"] for s in shown)
    confidences = [s["confidence"] for s in shown]
    assert confidences == sorted(confidences, reverse=True)


def test_grad_cam_looks_at_the_garment_not_the_background():
    """On a Fashion-MNIST item (light on black) the class evidence sits on the object."""
    plot_saliency("cnn_20k", DRESS, out="s.png")
    from captum.attr import LayerAttribution, LayerGradCam

    model = zoo.create_model("cnn_20k", pretrained=True).network.eval()
    x = zoo.transforms("cnn_20k")(DRESS)[None]
    last_conv = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    heat = LayerAttribution.interpolate(
        LayerGradCam(model, last_conv).attribute(x, target=3, relu_attributions=True), (28, 28)
    )[0, 0]
    garment = torch.from_numpy(np.array(Image.open(DRESS))) > 30
    assert heat[garment].mean() > 2 * heat[~garment].mean()


def test_saliency_for_another_class_and_bad_class(capsys):
    plot = plot_saliency("cnn_20k", DRESS, target="coat", out="s.png")
    assert plot.facts["class"] == "Coat" and plot.facts["predicted"] == "Dress"
    assert main(["plot", "saliency", "cnn_20k", str(DRESS), "--class", "zebra", "--out", "s.png"]) == 2
    err = capsys.readouterr().err
    assert "unknown class 'zebra'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_mlp_gets_what_applies_and_one_line_refusals(capsys, tmp_path):
    plot = plot_saliency("fcn_100k", DRESS, out=str(tmp_path / "s.png"))
    assert plot.facts["method"] == "input-gradient saliency"
    _is_png(tmp_path / "s.png")
    for kind in (["filters", "fcn_100k"], ["features", "fcn_100k", str(DRESS)]):
        assert main(["plot", *kind, "--out", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err
        assert "fcn_100k is an MLP" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


@pytest.fixture(scope="module")
def cifar_image(tmp_path_factory, data_dir):
    """A real CIFAR-10 test image as a JPEG file (a ship), as a user would pass one."""
    from zoo.core.data import load_dataset

    test = load_dataset("cifar10", data_dir).test
    index = int((test.labels == 8).nonzero()[0])
    path = tmp_path_factory.mktemp("cifar") / "ship.jpg"
    Image.fromarray(test.images[index].permute(1, 2, 0).numpy()).save(path, quality=95)
    return path


def test_cifar_model_filters_are_rgb_and_its_features_and_saliency_draw(cifar_image, tmp_path):
    filters = plot_filters("cifar_cnn_best", out=tmp_path / "f.png")
    assert filters.facts["kernel_shape"][0] == 3
    features = plot_features("cifar_cnn_best", cifar_image, out=tmp_path / "m.png")
    convs = [m for m in zoo.create_model("cifar_cnn_best").modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(features.facts["layers"]) == len(convs) == 7
    saliency = plot_saliency("cifar_cnn_best", cifar_image, out=tmp_path / "s.png")
    assert saliency.facts["method"].startswith("Grad-CAM")
    for name in ("f", "m", "s"):
        _is_png(tmp_path / f"{name}.png")


def test_curves_overlay_runs_and_report_their_best_epoch(tmp_path):
    runs = [REPO / "docs/runs/cnn_20k/seed0", REPO / "docs/runs/fcn_50k/seed0"]
    plot = plot_curves(runs, tmp_path / "curves.png")
    for run, label in zip(runs, ("cnn_20k", "fcn_50k"), strict=True):
        best = max(json.loads(line)["val_accuracy"] for line in (run / "metrics.jsonl").read_text().splitlines())
        assert plot.facts["best_val_accuracy"][label] == best


def test_bad_plot_inputs_are_one_line_errors(capsys, tmp_path):
    cases = [
        (["curves", str(tmp_path)], "not a run folder"),
        (["filters", "cnn_20k", "--out", str(tmp_path / "x.jpg")], "must name a .png"),
        (["features", "cnn_20k", str(tmp_path / "missing.png"), "--out", str(tmp_path / "x.png")], "no such file"),
        (["confusion", "cnn_2k"], "unknown model"),
    ]
    for argv, reason in cases:
        assert main(["plot", *argv]) != 0
        err = capsys.readouterr().err
        assert reason in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, argv
