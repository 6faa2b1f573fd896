"""`zoo.predict` / `zoo predict`: every format and mode, real-photo preprocessing, backends agreeing, bad input."""

from __future__ import annotations

import dataclasses
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo
from zoo.cli import main
from zoo.core.datasets import CIFAR10, FASHION_MNIST
from zoo.core.images import open_image, to_model_array
from zoo.prediction import default_model

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.png"))


@pytest.fixture(scope="module")
def weights(random_checkpoint):
    return random_checkpoint("cnn_10k", seed=1)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory, weights, data_dir):
    out = tmp_path_factory.mktemp("onnx") / "cnn_10k.onnx"
    zoo.export_onnx("cnn_10k", weights=weights, out=out, validate_images=32)
    return out


def test_examples_are_one_fashion_mnist_image_per_class():
    assert len(EXAMPLE_FILES) == 10
    for path in EXAMPLE_FILES:
        image = Image.open(path)
        assert image.size == (28, 28) and image.mode == "L"


def test_data_set_images_pass_preprocessing_unchanged(fashion_mnist):
    """The examples are Fashion-MNIST test images, already in the data set's convention: not a pixel moves."""
    for path in EXAMPLE_FILES:
        label = int(path.name.split("-")[0])
        first = int((fashion_mnist.test.labels == label).nonzero()[0])
        processed = to_model_array(open_image(path), FASHION_MNIST)[0]
        np.testing.assert_array_equal(processed, fashion_mnist.test.images[first, 0].numpy(), err_msg=path.name)
    # So does the whole test set (the rule: 28×28 grey with a dark border), bar a handful of images whose
    # garment fills the border.
    unchanged = sum(
        np.array_equal(to_model_array(Image.fromarray(image[0].numpy()), FASHION_MNIST)[0], image[0].numpy())
        for image in fashion_mnist.test.images[:1000]
    )
    assert unchanged >= 995


def test_photo_on_light_background_becomes_light_on_dark():
    """A garment photographed dark-on-white, large and off-centre, comes out like the data set's own image."""
    original = np.asarray(Image.open(EXAMPLES / "1-trouser.png"), dtype=np.uint8)
    photo = Image.new("RGB", (400, 300), (235, 232, 228))  # light, slightly warm paper
    garment = Image.fromarray(255 - original).convert("RGB").resize((168, 168), Image.Resampling.BICUBIC)
    mask = Image.fromarray(original).resize((168, 168), Image.Resampling.BICUBIC)
    photo.paste(garment, (40, 90), mask)
    processed = to_model_array(photo, FASHION_MNIST)[0].astype(float)
    assert processed.shape == (28, 28)
    assert processed[:, :3].mean() < 20 and processed[10:18, 10:18].mean() > 60  # dark border, light object
    assert np.corrcoef(processed.ravel(), original.astype(float).ravel())[0, 1] > 0.8


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "WEBP", "GIF"])
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "1", "I;16", "LA"])
def test_every_format_and_mode(tmp_path, fmt, mode):
    source = Image.open(EXAMPLES / "7-sneaker.png").resize((57, 41))
    if mode == "I;16":
        image = Image.fromarray(np.asarray(source, dtype=np.uint16) * 257)
        if fmt != "PNG":
            pytest.skip("16-bit grey is a PNG feature")
    else:
        image = source.convert(mode)
    if (fmt, image.mode) in {("JPEG", "RGBA"), ("JPEG", "P"), ("JPEG", "LA"), ("BMP", "LA"), ("GIF", "LA")}:
        pytest.skip(f"{fmt} cannot store {mode}")
    path = tmp_path / f"image.{fmt.lower()}"
    image.save(path, format=fmt)
    for preprocessing in (FASHION_MNIST, CIFAR10):
        array = to_model_array(open_image(path), preprocessing)
        assert array.dtype == np.uint8 and array.shape == (preprocessing.channels, *preprocessing.size)
    if mode in ("L", "RGB", "I;16") and fmt in ("PNG", "BMP", "WEBP"):
        reference = to_model_array(source, FASHION_MNIST)
        processed = to_model_array(open_image(path), FASHION_MNIST).astype(float).ravel()
        assert np.corrcoef(processed, reference.astype(float).ravel())[0, 1] > 0.95


def test_gif_first_frame(tmp_path):
    frames = [Image.open(EXAMPLES / "8-bag.png"), Image.new("L", (28, 28), 255)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    array = to_model_array(open_image(tmp_path / "a.gif"), FASHION_MNIST)
    assert array.max() > 200 and array.mean() < 200  # the bag, not the white second frame


def test_backends_agree_on_the_examples(weights, onnx_file):
    torch_results = zoo.predict([str(EXAMPLES)], model="cnn_10k", weights=weights, topk=3)
    onnx_results = zoo.predict([str(EXAMPLES)], backend="onnxruntime", onnx=onnx_file, topk=3)
    assert len(torch_results) == len(onnx_results) == 10
    for a, b in zip(torch_results, onnx_results, strict=True):
        assert a.error is None and b.error is None and a.file == b.file
        assert (a.backend, b.backend) == ("torch", "onnxruntime")
        assert a.top[0]["class"] == b.top[0]["class"]
        assert abs(a.top[0]["probability"] - b.top[0]["probability"]) < 1e-4


def _bad_inputs(folder: Path) -> dict[str, str]:
    """File name -> a fragment of the reason it must be refused with."""
    (folder / "empty").mkdir()
    (folder / "zero.png").write_bytes(b"")
    (folder / "text.png").write_text("this is not an image\n")
    good = (EXAMPLES / "5-sandal.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    # 20000×20000 in the header, a few bytes on disk: it must be refused before decoding.
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    (folder / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    Image.new("CMYK", (30, 30), (0, 50, 100, 0)).save(folder / "cmyk.jpg")
    Image.new("L", (30, 30)).save(folder / "image.tiff")
    return {
        "missing.png": "no such file",
        "empty": "folder has no images",
        "zero.png": "empty file",
        "text.png": "not a recognised image",
        "truncated.png": "truncated",
        "bomb.png": "decompression bomb",
        "cmyk.jpg": "unsupported image mode CMYK",
        "image.tiff": "unsupported format TIFF",
        "nothing*.png": "no file matches",
    }


def test_bad_inputs_each_give_one_clear_reason(tmp_path, weights):
    expected = _bad_inputs(tmp_path)
    inputs = [str(tmp_path / name) for name in expected] + [str(EXAMPLES / "1-trouser.png")]
    results = zoo.predict(inputs, model="cnn_10k", weights=weights)
    assert len(results) == len(inputs)
    for result, (name, fragment) in zip(results, expected.items(), strict=False):
        assert result.file.endswith(name) and result.error and fragment in result.error, (name, result.error)
    assert results[-1].error is None and results[-1].top


def test_cli_predicts_the_good_and_names_the_bad(capsys, tmp_path, weights):
    expected = _bad_inputs(tmp_path)
    good = str(EXAMPLES / "3-dress.png")
    argv = ["predict", good, *(str(tmp_path / n) for n in expected), "--model", "cnn_10k", "--weights", str(weights)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "3-dress.png" in captured.out and "probability" in captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == len(expected) and "Traceback" not in captured.err
    for line, (name, fragment) in zip(lines, expected.items(), strict=True):
        assert line.startswith("error: ") and name in line and fragment in line

    assert main([*argv, "--json", "--topk", "2"]) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == len(expected) + 1
    assert set(rows[0]) == {"file", "model", "backend", "top"} and len(rows[0]["top"]) == 2
    assert rows[0]["top"][0]["probability"] >= rows[0]["top"][1]["probability"]
    assert all(set(row) == {"file", "error"} for row in rows[1:])
    assert main(["predict", good, "--model", "cnn_10k", "--weights", str(weights), "--json"]) == 0


def test_default_model_and_missing_weights(monkeypatch, capsys, unshipped):
    from zoo import prediction

    # The default: the most accurate Fashion-MNIST model that ships weights.
    fashion = [n for n in zoo.list_models() if zoo.get_spec(n).dataset == "fashion_mnist" and zoo.get_spec(n).accuracy]
    assert default_model() == max(fashion, key=lambda n: zoo.get_spec(n).accuracy)
    monkeypatch.setenv("ZOO_MODEL", "fcn_100k")
    assert default_model() == "fcn_100k"
    # fcn_100k as if it shipped no weights.
    unshipped("fcn_100k")
    code = main(["predict", str(EXAMPLE_FILES[0])])
    err = capsys.readouterr().err
    assert code != 0 and "fcn_100k ships no trained weights yet" in err and "--weights PATH" in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.delenv("ZOO_MODEL")
    monkeypatch.setattr(prediction, "manifest", lambda: {})
    with pytest.raises(zoo.ZooError, match="no Fashion-MNIST model ships trained weights"):
        default_model()


def test_photos_decode_at_four_times_the_model_input_whichever_way_they_arrive(tmp_path):
    """A 224x224 photo decodes (JPEG: at half DCT scale) and box-shrinks to 112 px for a 28x28 model and stays
    224 px for a 32x32 one (128 px needed); a PIL image handed over decoded gets the same shrink, so a PNG file
    and the same image in memory give the same model input."""
    from zoo.core.images import decode_image, decode_side

    photo = Image.open(EXAMPLES / "3-dress.png").convert("RGB").resize((224, 224), Image.Resampling.LANCZOS)
    photo.save(tmp_path / "dress.jpg", quality=90)
    photo.save(tmp_path / "dress.png")
    assert decode_side(FASHION_MNIST) == 112 and decode_side(CIFAR10) == 128
    assert open_image(tmp_path / "dress.jpg", decode_side(FASHION_MNIST)).size == (112, 112)
    assert decode_image((tmp_path / "dress.jpg").read_bytes(), side=decode_side(CIFAR10)).size == (224, 224)
    from_file = to_model_array(open_image(tmp_path / "dress.png", decode_side(FASHION_MNIST)), FASHION_MNIST)
    np.testing.assert_array_equal(from_file, to_model_array(photo, FASHION_MNIST))
    assert zoo.predict(tmp_path / "dress.jpg", model="cnn_20k")[0].top[0]["class"] == "Dress"


def _float_recipe(image: Image.Image, preprocessing) -> np.ndarray:
    """to_model_array as it was before its shortcuts for plain 8-bit images: every image through float32."""
    from zoo.core import images

    height, width = preprocessing.size
    image = images._shrunk(image, images.decode_side(preprocessing))
    if preprocessing.channels == 1:
        grey = images._to_float(image, "L")
        if preprocessing.light_on_dark:
            if grey.shape == (height, width) and images._median(images._border(grey)) <= images.DARK_BORDER:
                return images._to_uint8(grey)[None]
            return images._light_on_dark(grey, (height, width))[None]
        return images._fit(Image.fromarray(images._to_uint8(grey)), (height, width))[None]
    rgb = Image.fromarray(images._to_uint8(images._to_float(image, "RGB")), "RGB")
    return images._fit(rgb, (height, width)).transpose(2, 0, 1).copy()


def test_shortcuts_for_plain_8bit_images_give_the_float_recipe_exactly(fashion_mnist):
    """Streaming a million files takes shortcuts for 8-bit grey and RGB images (no float copies); each gives
    the very array the float path gives, for data set images, photos, every mode and a grey-only model."""
    generator = np.random.default_rng(0)
    cases = [Image.fromarray(image[0].numpy()) for image in fashion_mnist.test.images[:300]]
    cases += [
        Image.fromarray(generator.integers(0, 256, (h, w, 3), np.uint8)) for h, w in ((32, 32), (41, 57), (300, 200))
    ]
    cases += [Image.fromarray(generator.integers(0, 256, (h, w), np.uint8)) for h, w in ((28, 28), (32, 32), (90, 60))]
    photo = Image.open(EXAMPLES / "7-sneaker.png").resize((57, 41))
    cases += [photo.convert(mode) for mode in ("L", "RGB", "RGBA", "P", "LA", "1")]
    grey_fit = dataclasses.replace(CIFAR10, channels=1, mean=(0.5,), std=(0.25,))
    for preprocessing in (FASHION_MNIST, CIFAR10, grey_fit):
        for image in cases:
            np.testing.assert_array_equal(to_model_array(image, preprocessing), _float_recipe(image, preprocessing))
