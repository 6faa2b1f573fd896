"""The inputs to classify, enumerated lazily and in a stable order: files, folders, globs and list files.

A folder yields its images sorted by name (with `recursive`, each subfolder's at its place in that order);
entries whose name starts with a dot (.git, macOS's ._photo.jpg) are skipped. A list file names one image
file a line; "-" reads the lines from standard input. Nothing is held but the names of the folder being
listed, so a million images in a tree of folders cost one folder's names at a time (a folder of a million
files costs about 60 MB of names).

An ImageFolder (one subfolder per class, the layout of most labelled photo sets) yields each image with its
class index, the subfolders matched to a model's class names without regard to case and punctuation.
"""

from __future__ import annotations

import glob
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from zoo.core.errors import ZooError
from zoo.core.images import SUFFIXES, InputFile

STDIN = "-"  # a list file read from standard input


def iter_inputs(inputs: Iterable[str | os.PathLike[str]], *, recursive: bool = False) -> Iterator[InputFile]:
    """Files, folders and globs -> one InputFile per file, in the order given; an input that names no file is
    an InputFile with its `error`, so one bad name fails only itself."""
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            found = False
            for file in folder_images(text, recursive=recursive):
                found = True
                yield InputFile(file)
            if not found:
                yield InputFile(text, error=_empty_folder_reason(text, recursive))
        elif path.exists() or path.is_symlink():
            yield InputFile(text)
        elif any(c in text for c in "*?["):
            matches = sorted(m for m in glob.glob(text, recursive=True) if Path(m).is_file())
            if not matches:
                yield InputFile(text, error="no file matches this pattern")
            yield from (InputFile(m) for m in matches)
        else:
            yield InputFile(text, error="no such file or directory")


def list_file_inputs(source: str) -> Iterator[InputFile]:
    """The files a list file names, one a line ("-": standard input), as they are read; a line is not
    looked at here (a folder or glob in it is not expanded): the decoder says why a name is not an image."""
    return (InputFile(line) for line in list_file_lines(source))


def skip_done(inputs: Iterator[InputFile], done: Iterable[str], where: str) -> Iterator[InputFile]:
    """The inputs after those a resumed run has done, each of which must be the input `done` names at its
    place: a run resumed with other inputs would otherwise skip the wrong files."""
    for number, label in enumerate(done, 1):
        item = next(inputs, None)
        if item is None:
            raise ZooError(f"{where} holds more rows than there are inputs ({number - 1:,}): were inputs removed?")
        if item.label != label:
            raise ZooError(
                f"{where} row {number:,} is {label!r}, but input {number:,} is {item.label!r}: resume with the "
                "inputs of the run that wrote it"
            )
    yield from inputs


def folder_images(folder: str, *, recursive: bool = False) -> Iterator[str]:
    """The image files of a folder, sorted by name; with `recursive`, its subfolders' at their place too.
    A name with an image suffix is taken for a file, unchecked (the decoder says if it is not one): in a
    folder of a million images, a check each would cost as much as the listing. Links to folders are not
    followed (a link can make a loop)."""
    for name in sorted(name for name in os.listdir(folder) if not name.startswith(".")):
        path = os.path.join(folder, name)
        if name.lower().endswith(SUFFIXES):
            yield path
        elif recursive and not os.path.islink(path) and os.path.isdir(path):
            yield from folder_images(path, recursive=True)


def list_file_lines(source: str) -> Iterator[str]:
    """The non-blank lines of a list file, or of standard input for "-", without their line ends."""
    if source == STDIN:
        yield from _lines(sys.stdin)
        return
    try:
        handle = open(source, encoding="utf-8")
    except OSError as error:
        raise ZooError(
            f"cannot read the list file {source}: {error.strerror or error}", argument="files_from"
        ) from error
    with handle:
        yield from _lines(handle)


def _lines(handle) -> Iterator[str]:
    for line in handle:
        line = line.rstrip("\r\n")
        if line.strip():
            yield line


def _empty_folder_reason(folder: str, recursive: bool) -> str:
    reason = f"folder has no images ({', '.join(SUFFIXES)})"
    if not recursive and any(entry.is_dir() and not entry.name.startswith(".") for entry in os.scandir(folder)):
        reason += "; it has subfolders, which --recursive searches"
    return reason


def class_key(name: str) -> str:
    """A class or folder name without case and punctuation: 'T-shirt/top', 't_shirt_top' -> 'tshirttop'."""
    return re.sub(r"[\W_]+", "", name).casefold()


def image_folder(root: str | os.PathLike[str], classes: list[str]) -> dict[str, int]:
    """An ImageFolder's class subfolders -> the index of the class each names (see `class_key`). A subfolder
    that names no class, or a second one naming a class, is a ZooError that lists the classes."""
    root = Path(root)
    if not root.is_dir():
        raise ZooError(f"{root} is not a folder", argument="images")
    index = {class_key(name): i for i, name in enumerate(classes)}
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ZooError(
            f"{root} has no class subfolders: an ImageFolder holds one folder per class ({', '.join(classes)})",
            argument="images",
        )
    matched: dict[str, int] = {}
    for folder in folders:
        if class_key(folder) not in index:
            raise ZooError(
                f"folder {folder!r} in {root} matches none of the model's classes ({', '.join(classes)}); "
                "rename or remove it",
                argument="images",
            )
        twin = next((other for other, i in matched.items() if i == index[class_key(folder)]), None)
        if twin is not None:
            raise ZooError(f"folders {twin!r} and {folder!r} in {root} both name class {classes[matched[twin]]!r}")
        matched[folder] = index[class_key(folder)]
    return matched


def iter_labelled(root: str | os.PathLike[str], folders: dict[str, int]) -> Iterator[InputFile]:
    """Every image under each class folder (at any depth), with its class index as `target`."""
    for folder, target in folders.items():
        for file in folder_images(os.path.join(root, folder), recursive=True):
            yield InputFile(file, target=target)
