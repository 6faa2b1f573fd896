"""Print README's benchmark summary table from saved `zoo benchmark --save-json` results.

    python3 benchmarks/readme_table.py benchmarks/results-epyc-2core.json \
        benchmarks/results-epyc-2core-fashion-mnist.json benchmarks/results-epyc-2core-cifar_cnn_best.json

A later file's rows replace an earlier one's for the same model. tests/test_readme.py holds README's table
to this output, so a re-measured model cannot leave a stale row.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from zoo.bench.report import readme_table
from zoo.core.weights import tag_of


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: python3 benchmarks/readme_table.py RESULTS.json [MORE.json ...]", file=sys.stderr)
        return 2
    results = [json.loads(Path(path).read_text()) for path in paths]
    print(readme_table(results, tag_of), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
