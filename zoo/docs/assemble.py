"""Every generated file assembled from the records, then checked against the committed one or written:
the generated blocks in hand-written pages, mkdocs.yml's navigation, the model and machine pages, and the
tables that other commands write."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.docs.benchmarks import benchmark_pages, fastest_block, machines_block
from zoo.docs.deployment import (
    bare_loop_block,
    cold_start_block,
    fetched_sizes_sentence,
    install_size_block,
    onnx_block,
    openvino_paths_block,
    serving_block,
    serving_runtimes_block,
)
from zoo.docs.files import Link, Regenerated
from zoo.docs.models import model_pages, models_block, models_index_block
from zoo.docs.records import Machine, benchmark_records, machines, nine
from zoo.docs.scale import folder_eval_sentence, predict_scale_block
from zoo.docs.studies import experiment_outputs, experiments_block, study_outputs, study_summary_block, sweeps_block

BLOCK = re.compile(r"(<!-- zoo\.docs (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /zoo\.docs (?P=name) -->)", re.S)


def fill(text: str, blocks: dict[str, str], where: str) -> str:
    """`text` with each generated block's body replaced; every block it names must be known."""

    def body(match: re.Match) -> str:
        name = match.group("name")
        if name not in blocks:
            raise SystemExit(f"{where}: unknown generated block {name!r}; known: {', '.join(blocks)}")
        return match.group(1) + blocks[name].rstrip("\n") + "\n" + match.group(4)

    return BLOCK.sub(body, text)


def blocks(root: Path) -> dict[str, Callable[[], str]]:
    found = machines(benchmark_records(root))
    return {
        "models-readme": lambda: models_block(root, "docs/"),
        "models-home": lambda: models_block(root, ""),
        "models-index": lambda: models_index_block(root),
        "fastest": lambda: fastest_block(found),
        "machines": lambda: machines_block(found),
        "install-size": lambda: install_size_block(root),
        "fetched-size": fetched_sizes_sentence,
        "serving": lambda: serving_block(root),
        "serving-runtimes": lambda: serving_runtimes_block(root),
        "openvino-paths": lambda: openvino_paths_block(root),
        "cold-start": lambda: cold_start_block(root),
        "bare-loop": lambda: bare_loop_block(root),
        "onnx-checks": lambda: onnx_block(root),
        "predict-scale": lambda: predict_scale_block(root),
        "eval-images": lambda: folder_eval_sentence(root),
        "study-summary": lambda: study_summary_block(root),
        "experiments": lambda: experiments_block(root),
        "sweeps": lambda: sweeps_block(root),
    }


def pages_with_blocks(root: Path) -> dict[Path, str]:
    """README.md and the hand-written pages, their generated blocks filled in from the records."""
    makers, made = blocks(root), {}
    pages = {}
    for path in [Path("README.md"), *sorted(p.relative_to(root) for p in (root / "docs").rglob("*.md"))]:
        text = (root / path).read_text()
        names = [m.group("name") for m in BLOCK.finditer(text)]
        if not names:
            continue
        for name in names:
            if name in makers and name not in made:
                made[name] = makers[name]()
        pages[path] = fill(text, made, str(path))
    return pages


NAV = re.compile(r"^(?P<indent> *)# zoo\.docs (?P<name>[\w-]+)\n.*?^(?P=indent)# /zoo\.docs (?P=name)$", re.S | re.M)


def navigation(root: Path, found: list[Machine]) -> dict[Path, str]:
    """mkdocs.yml with its generated navigation: a page per model and per benchmark machine."""
    path = root / "mkdocs.yml"
    if not path.is_file():
        return {}
    entries = {
        "nav-models": [(name, f"models/{name}.md") for name in nine()],
        "nav-benchmarks": [(machine.title, f"benchmarks/{machine.slug}.md") for machine in found],
    }

    def body(match: re.Match) -> str:
        indent, name = match.group("indent"), match.group("name")
        lines = [f"{indent}- {json.dumps(title)}: {page}" for title, page in entries[name]]
        return "\n".join([f"{indent}# zoo.docs {name}", *lines, f"{indent}# /zoo.docs {name}"])

    return {Path("mkdocs.yml"): NAV.sub(body, path.read_text())}


def expected(root: Path, scratch: Path) -> dict[Path, Any]:
    """Every generated file, relative to root: text, a Link, or a Regenerated table."""
    found = machines(benchmark_records(root))
    return {
        **pages_with_blocks(root),
        **navigation(root, found),
        **model_pages(root, found),
        **benchmark_pages(root, found),
        **study_outputs(root, scratch),
        **experiment_outputs(root, scratch),
    }


def stale(root: Path, path: Path, content: Any) -> bool:
    target = root / path
    if isinstance(content, Link):
        return not target.is_symlink() or Path(os.readlink(target)) != content.target
    text = content.text if isinstance(content, Regenerated) else content
    return not target.is_file() or target.read_text() != text


def orphans(root: Path, generated: dict[Path, Any]) -> list[Path]:
    """Machine pages and plot links under docs/benchmarks/ that no record generates any more."""
    folder = root / "docs" / "benchmarks"
    present = [p for p in folder.iterdir() if p.name != "index.md"] if folder.is_dir() else []
    return sorted(p.relative_to(root) for p in present if p.relative_to(root) not in generated)


def write(root: Path, path: Path, content: Any) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, Link):
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(content.target)
    elif isinstance(content, Regenerated):
        target.write_text(content.text)
        content.write()
    else:
        target.write_text(content)


def run(root: Path, check: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="zoo-docs-") as scratch:
        generated = expected(root, Path(scratch))
        out_of_date = [path for path, content in generated.items() if stale(root, path, content)]
        extra = orphans(root, generated)
        if check:
            for path in out_of_date:
                state = "differs from the records" if (root / path).exists() else "is missing"
                print(f"stale: {path} {state}; run `python3 -m zoo.docs`")
            for path in extra:
                print(f"stale: {path} is generated from no record any more; run `python3 -m zoo.docs`")
            return 1 if out_of_date or extra else 0
        for path in out_of_date:
            write(root, path, generated[path])
            print(f"wrote {path}")
        for path in extra:
            (root / path).unlink()
            print(f"removed {path}")
    return 0
