"""The README's and the documentation site's measured figures, generated from the records alone.

    python3 -m zoo.docs            # rewrite every generated table, card and caption from the records
    python3 -m zoo.docs --check    # change nothing; exit 1 with one line per stale file (CI runs it)
    python3 -m zoo.docs --capture  # rerun the command guides' examples and keep their output (minutes)

The records: weights/manifest.json (every tag's record), the run records under docs/runs/ and
docs/experiments/runs/, the benchmark records benchmarks/results-*.json and the shipped ONNX files'
validation metadata. Generated are the README's and the home page's model table, a page per model (its
`zoo study` card, every tag's record and its history), a page per benchmark machine with its tables and
plots, the fastest runtime per model and machine, the deployment page's sizes and load tests, and the
tables that `zoo study` and `zoo experiment` write. Hand-written pages hold generated blocks between
`<!-- zoo.docs NAME -->` and `<!-- /zoo.docs NAME -->`; the rest of such a page is prose without figures.
Run from the repository's root.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zoo.docs.assemble import run
from zoo.docs.capture import capture


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m zoo.docs", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a generated file is stale")
    parser.add_argument("--capture", nargs="*", metavar="GUIDE", help="rerun the guides' examples (all by default)")
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository (default: here)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if not (root / "weights" / "manifest.json").is_file():
        print(f"error: {root} is not the repository's root (no weights/manifest.json)", file=sys.stderr)
        return 2
    if args.capture is not None:
        return capture(root, args.capture)
    return run(root, args.check)


if __name__ == "__main__":
    sys.exit(main())
