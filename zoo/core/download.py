"""`zoo.download()` (and `zoo download`): fill the cache with shipped weights, or write a weights store.

For air-gapped machines: `zoo download --all --to DIR` on a machine that reaches the store (or in a source
checkout, which holds every tag) writes DIR as a store of its own (the files plus the manifest of the tags it
holds). Another machine serves DIR with any static HTTP server or reads it as `ZOO_WEIGHTS_URL=file:///DIR`.
Torch-free.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from zoo.core.errors import ZooError
from zoo.core.files import atomic_write, sha256_file
from zoo.core.weights import manifest, shipped_weights, split_tag, write_manifest


@dataclass(frozen=True)
class DownloadedFile:
    name: str  # `model.tag`
    file: str  # its file name in the store
    size: int  # bytes
    sha256: str
    path: str  # where it is now: the package, the cache, or the --to folder


def download(
    names: list[str] | None = None, *, all_tags: bool = False, to: str | os.PathLike[str] | None = None
) -> list[DownloadedFile]:
    """Fetch (and verify) the safetensors and ONNX files of `names` (`model` for its default tag,
    `model.tag` for one tag; default: every model's default tag; `all_tags`: every tag of every model named,
    or of all). `to`: also copy them into that folder with a manifest of those tags, a store of its own."""
    tags = _tags(names, all_tags)
    files = []
    for model, tag in tags:
        shipped = shipped_weights(model, tag)
        pairs = [(shipped.file, shipped.sha256, shipped.verified_path)]
        if shipped.onnx_file:
            pairs.append((shipped.onnx_file, shipped.onnx_sha256, shipped.onnx_verified))
        for file, sha256, fetch in pairs:
            path = fetch()
            if to is not None:
                path = _copy_into(path, Path(to) / file, sha256)
            files.append(DownloadedFile(shipped.name, file, path.stat().st_size, sha256, str(path)))
    if to is not None:
        _write_store_manifest(Path(to), tags)
    return files


def _tags(names: list[str] | None, all_tags: bool) -> list[tuple[str, str]]:
    known = manifest()
    if not known:
        raise ZooError("this zoo installation lists no shipped weights (its manifest is missing)")
    chosen = []
    for name in names or sorted(known):
        model, tag = split_tag(name)
        if model not in known:
            raise ZooError(f"{model!r} ships no weights; models that do: {', '.join(sorted(known))}", argument="names")
        entry = known[model]
        if tag is not None:
            shipped_weights(model, tag)  # a clear error for a tag it does not have
        wanted = [tag] if tag else list(entry["tags"]) if all_tags else [entry["default"]]
        chosen += [(model, t) for t in wanted if (model, t) not in chosen]
    return chosen


def _copy_into(source: Path, target: Path, sha256: str) -> Path:
    if target.is_file() and sha256_file(target) == sha256:
        return target
    try:
        atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))
    except OSError as error:
        raise ZooError(f"cannot write {target}: {error.strerror}", argument="to") from error
    return target


def _write_store_manifest(folder: Path, tags: list[tuple[str, str]]) -> None:
    """The store's manifest: the installed one's records of the tags the folder holds, defaults kept where
    the folder holds them (else its newest tag of that model)."""
    entries: dict[str, dict[str, object]] = {}
    for model, tag in tags:
        entry = manifest()[model]
        mine = entries.setdefault(model, {"dataset": entry["dataset"], "default": None, "tags": {}})
        mine["tags"][tag] = dict(entry["tags"][tag])
        mine["default"] = entry["default"] if entry["default"] in mine["tags"] else tag
    try:
        write_manifest(folder, entries)
    except OSError as error:
        raise ZooError(f"cannot write {folder}: {error.strerror}", argument="to") from error
