"""Real-world image files -> the uint8 [C, H, W] arrays a model was trained on.

Fashion-MNIST (`preprocessing.light_on_dark`) shows a light garment on a black background, produced by
trimming, resizing the longest edge to 28, centring and negating product photos. A photo is brought to
that convention by the same steps, after decoding it at about 4× the input side (112 pixels: see
DECODE_FACTOR):

1. grey-scale (transparent pixels are laid on white first, as a viewer shows them);
2. if the border (outer 10% frame, median) is brighter than the centre (middle half, mean), invert;
3. the background level (the border median) becomes 0 and the brightest pixel 255;
4. trim to the object: the box of pixels brighter than 10% of that range;
5. pad to a square with the background (0), centred, and resize (Lanczos) to 28×28.

An image already in the data set's convention (grey, 28×28, dark border) passes unchanged: every image of
the data set itself does. Other models (CIFAR-10, natural photos): RGB, resize the shorter side and
centre-crop to the input size; an image already at the input size passes unchanged.

`photo_recipe` names these rules; exported ONNX files carry that name, so another runtime can follow them.
"""

from __future__ import annotations

import functools
import io
import os
import stat
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from zoo.core.datasets import Preprocessing
from zoo.core.errors import ZooError

FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "GIF")
SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")
# Modes we can map to grey or RGB without guessing: bilevel, grey (8/16/32-bit integer), palette, RGB,
# each with or without alpha. CMYK, YCbCr, LAB, HSV and float images need colour management or a value
# range we cannot know, so they are refused rather than silently misread.
MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "I", "I;16", "I;16B", "I;16L", "I;16N")
MAX_PIXELS = 40_000_000  # far above any real photo; a larger header is treated as a decompression bomb
DARK_BORDER = 10  # border median (0-255) at or below which a grey image counts as already light-on-dark
DECODE_SIDE = 256  # an image opened with no model in view decodes and shrinks to about this shorter side
# For a model, images decode (JPEG: at a reduced DCT scale) and shrink (box) to about this many times its
# input side: 112 pixels for 28x28. The Lanczos resize to 28-32 pixels gains nothing from more, and every
# later step (grey, float, medians, trimming) costs in proportion to the pixels: a 224x224 product photo
# runs the light-on-dark steps in about half the time of a full-size decode.
DECODE_FACTOR = 4
DECODE_STEP = (
    "decode at the largest of 1, 1/2, 1/4, 1/8 scale (JPEG) or box-reduce by a whole factor (other formats, "
    f"and images given decoded) that keeps the shorter side at least {DECODE_FACTOR}x max(H, W); "
)
LIGHT_ON_DARK_RECIPE = (
    "zoo.light_on_dark/3: " + DECODE_STEP + "grey (alpha laid on white); unchanged if already HxW with border "
    "median <= 10; "
    "else invert if the border (outer 10% frame, median) is brighter than the centre (middle half, mean); "
    "map the border median to 0 and the brightest pixel to 255; trim to pixels above 25.5; "
    "pad to a centred square with 0; resize (Lanczos) to HxW"
)
FIT_RECIPE = (
    "zoo.fit/3: " + DECODE_STEP + "RGB (alpha laid on white), or grey; unchanged if already HxW; "
    "else resize the shorter side (Lanczos) and centre-crop to HxW"
)


class ImageError(ZooError):
    """An input file that is not a usable image; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str):
        super().__init__(f"{path}: {reason}", argument="images")
        self.path, self.reason = str(path), reason

    def __reduce__(self):  # rebuilt from its two arguments when it crosses a process (zoo serve's decoder)
        return type(self), (self.path, self.reason)


@dataclass(frozen=True)
class InputFile:
    """One input to classify: a path (`label`) to open, an image already in hand, or why there is none."""

    label: str  # the path as given or found, or "<image N>" for an image passed in memory
    image: Image.Image | None = None  # already decoded
    error: str | None = None  # why this input cannot be classified (no such file, an empty folder, ...)
    target: int | None = None  # the true class index, for an image of a labelled folder (zoo.core.inputs)


def decode_side(preprocessing: Preprocessing) -> int:
    """The shorter side an image is decoded and shrunk to for a model with this input (see DECODE_FACTOR)."""
    return DECODE_FACTOR * max(preprocessing.size)


def open_image(path: str | os.PathLike[str], side: int = DECODE_SIDE) -> Image.Image:
    """Open and fully decode an image file (to about `side` pixels on its shorter side, where it is
    larger: pass `decode_side(preprocessing)` for a model), or raise ImageError with a one-line reason."""
    try:
        status = os.stat(path)  # one system call for all three checks: a million files pay it a million times
    except OSError as error:  # "no such file or directory", "permission denied", ...
        raise ImageError(path, (error.strerror or "cannot read it").lower()) from None
    if not stat.S_ISREG(status.st_mode):
        raise ImageError(path, "not a regular file")
    if status.st_size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    return decode_opened(_open(os.fspath(path), path), path, side)


def decode_image(data: bytes, label: str = "upload", side: int = DECODE_SIDE) -> Image.Image:
    """Decode an image held in memory (an upload) like `open_image` decodes a file; nothing touches disk."""
    return decode_opened(open_upload(data, label), label, side)


def open_upload(data: bytes, label: str = "upload") -> Image.Image:
    """An image held in memory, opened and checked on its header alone (format, pixel count, mode), or an
    ImageError; not a pixel decoded yet, so a server can route it by its size first (`decode_opened`)."""
    if not data:
        raise ImageError(label, "empty file (0 bytes)")
    return _open(io.BytesIO(data), label)


def decode_opened(image: Image.Image, label: str | os.PathLike[str], side: int) -> Image.Image:
    """An image from `open_upload` decoded, to about `side` pixels on its shorter side where it is larger."""
    try:
        image.seek(0)  # animated GIF / WebP: the first frame
        if image.format == "JPEG":
            # The decoder's own downscaling: a 48-megapixel phone photo decodes as 0.75 megapixels.
            image.draft(image.mode, (side, side))
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageError(label, f"cannot decode, the file is truncated or corrupt ({error})") from error
    return _shrunk(image, side)


def _open(source: str | io.BytesIO, label: str | os.PathLike[str]) -> Image.Image:
    try:
        if _BOMB_WARNINGS_RAISE:
            image = Image.open(source)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(source)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(label, "image is too large (decompression bomb?)") from error
    except UnidentifiedImageError as error:
        raise ImageError(label, "not a recognised image file (supported: PNG, JPEG, BMP, WebP, GIF)") from error
    except OSError as error:
        raise ImageError(label, f"cannot read ({error})") from error
    if image.format not in FORMATS:
        raise ImageError(label, f"unsupported format {image.format} (supported: PNG, JPEG, BMP, WebP, GIF)")
    width, height = image.size
    if width * height > MAX_PIXELS:  # checked on the header, before a single pixel is decoded
        raise ImageError(label, f"{width}×{height} pixels exceeds the {MAX_PIXELS:,}-pixel limit (decompression bomb?)")
    if image.mode not in MODES:
        raise ImageError(label, f"unsupported image mode {image.mode} (convert it to RGB or grey first)")
    return image


def raise_bomb_warnings() -> None:
    """Make PIL's decompression-bomb warning an error in this whole process, once: a decoding process of
    zoo's own (zoo.core.decode_pool) then skips the per-image `catch_warnings`, which costs as much as a
    fifth of decoding a 28x28 PNG."""
    global _BOMB_WARNINGS_RAISE
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    _BOMB_WARNINGS_RAISE = True


_BOMB_WARNINGS_RAISE = False


def _shrunk(image: Image.Image, side: int) -> Image.Image:
    """A large image box-reduced by a whole factor towards `side` on its shorter side, in its own 8-bit
    (or 16-bit) mode, before any float arithmetic: the models see 28-32 pixels, and a 40-megapixel PNG held
    as float32 would take 480 MB."""
    factor = min(image.size) // side
    if factor < 2:
        return image
    # Averaging needs values, not palette indices; 16-bit grey reduces as 32-bit (its values unchanged).
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode.startswith("I;16"):
        image = image.convert("I")
    return image.reduce(factor)


def photo_recipe(preprocessing: Preprocessing) -> str:
    """The name and steps of the rules that bring any image to this preprocessing's input (see above)."""
    return LIGHT_ON_DARK_RECIPE if preprocessing.light_on_dark and preprocessing.channels == 1 else FIT_RECIPE


def to_model_array(image: Image.Image, preprocessing: Preprocessing) -> np.ndarray:
    """A decoded image -> uint8 [C, H, W] at the model's input size, following the rules above."""
    height, width = preprocessing.size
    image = _shrunk(image, decode_side(preprocessing))  # an image given decoded, or opened without the model
    if preprocessing.channels == 1:
        if preprocessing.light_on_dark:
            if _plain_8bit(image) and image.mode == "L" and image.size == (width, height):
                pixels = np.array(image)  # the data set's own images: the test below, without float copies
                if _dark_border(pixels):
                    return pixels[None]
            grey = _to_float(image, "L")
            if grey.shape == (height, width) and _median(_border(grey)) <= DARK_BORDER:
                return _to_uint8(grey)[None]
            return _light_on_dark(grey, (height, width))[None]
        return _fit(_as_8bit(image, "L"), (height, width))[None]
    return _fit(_as_8bit(image, "RGB"), (height, width)).transpose(2, 0, 1).copy()


def _plain_8bit(image: Image.Image) -> bool:
    """8-bit grey or RGB without transparency: the pixels are the values, with nothing to scale or blend."""
    return image.mode in ("L", "RGB") and "transparency" not in image.info


def _as_8bit(image: Image.Image, mode: str) -> Image.Image:
    """The image in 8-bit `mode` ("L" or "RGB"), transparency laid on white and 16-bit values scaled (as
    `_to_float`); a plain 8-bit image, most photos, is converted by PIL alone, to the same values."""
    if _plain_8bit(image):
        return image if image.mode == mode else image.convert(mode)
    return Image.fromarray(_to_uint8(_to_float(image, mode)), mode)


def _dark_border(pixels: np.ndarray) -> bool:
    """`_median(_border(grey)) <= DARK_BORDER` for uint8 pixels, with one gather instead of four slices."""
    values = pixels.ravel()[_border_index(*pixels.shape)]
    low, high = (values.size - 1) // 2, values.size // 2
    middle = np.partition(values, (low, high))
    return int(middle[low]) + int(middle[high]) <= 2 * DARK_BORDER


@functools.cache
def _border_index(height: int, width: int) -> np.ndarray:
    """The flat positions `_border` takes, corners twice as it does (the median counts them so)."""
    return _border(np.arange(height * width).reshape(height, width))


def _fit(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    if image.size != (size[1], size[0]):
        image = ImageOps.fit(image, (size[1], size[0]), Image.Resampling.LANCZOS)
    return np.asarray(image)


def _border(grey: np.ndarray) -> np.ndarray:
    """The outer 10% frame of a grey image (at least one pixel wide), flattened."""
    height, width = grey.shape
    frame = max(1, min(height, width) // 10)
    return np.concatenate(
        [grey[:frame].ravel(), grey[-frame:].ravel(), grey[:, :frame].ravel(), grey[:, -frame:].ravel()]
    )


def _median(values: np.ndarray) -> np.float32:
    """np.median of a float32 array, exactly (the same partition and mean of the two middle values), without
    its generic reduction machinery, which costs more than the partition for an image's border: a server
    runs this for every image."""
    flat = values.ravel()
    low, high = (flat.size - 1) // 2, flat.size // 2
    middle = np.partition(flat, (low, high))
    return (middle[low] + middle[high]) / 2


def _to_float(image: Image.Image, target: str) -> np.ndarray:
    """Grey (H, W) or RGB (H, W, 3) float32 on the 0-255 scale, whatever the mode and bit depth."""
    if image.mode.startswith("I"):
        # 16- and 32-bit integer grey: scale the type's full range to 0-255 (PNG 16-bit is 0-65535).
        values = np.asarray(image, dtype=np.float32) * (255.0 / 65535.0)
        values = values.clip(0, 255)
        return values if target == "L" else np.repeat(values[..., None], 3, axis=2)
    has_alpha = image.mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert(target), dtype=np.float32)


def _light_on_dark(grey: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = grey.shape
    border = _border(grey)
    centre = grey[height // 4 : height - height // 4, width // 4 : width - width // 4]
    if _median(border) > (centre.mean() if centre.size else grey.mean()):
        grey = 255.0 - grey
        border = 255.0 - border
    background = float(_median(border))
    span = max(float(grey.max()) - background, 1.0)
    grey = ((grey - background) * (255.0 / span)).clip(0, 255)
    ink = grey > 25.5
    rows = np.flatnonzero(ink.any(axis=1))
    if rows.size:  # crop to the bounding box of the ink
        cols = np.flatnonzero(ink.any(axis=0))
        grey = grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    side = max(grey.shape)
    square = np.zeros((side, side), np.float32)
    top, left = (side - grey.shape[0]) // 2, (side - grey.shape[1]) // 2
    square[top : top + grey.shape[0], left : left + grey.shape[1]] = grey
    resized = Image.fromarray(_to_uint8(square)).resize((size[1], size[0]), Image.Resampling.LANCZOS)
    return np.asarray(resized)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.asarray(values).round().clip(0, 255).astype(np.uint8)
