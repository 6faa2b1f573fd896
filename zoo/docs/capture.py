"""The command guides' example output: each guide's commands rerun, and what they printed kept beside it."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

# Each guide shows what its commands printed when last captured. Lines run in one bash session in a scratch
# folder that has ../shared/data, examples/ and the docs' records at their usual relative paths.
CAPTURES: dict[str, tuple[str, ...]] = {
    "list": ("zoo list",),
    "info": ("zoo info cnn_20k",),
    "train": ("zoo train cnn_20k --epochs 2 --data-dir ../shared/data --out runs/cnn_20k-demo",),
    "eval": ("zoo eval cnn_20k --data-dir ../shared/data",),
    "eval-images": (
        "for f in examples/*.png; do c=${f#examples/?-}; mkdir -p my-photos/${c%.png}; cp $f my-photos/${c%.png}/; done",
        "cp examples/6-shirt.png my-photos/t-shirt-top/",
        "ls my-photos",
        "zoo eval cnn_20k --images my-photos",
    ),
    "export": ("zoo export cnn_20k --weights runs/cnn_20k-demo/best.safetensors --data-dir ../shared/data",),
    "predict": (
        "zoo predict examples/3-dress.png",
        "zoo predict examples/ --model fcn_50k --topk 1 --json",
    ),
    "download": ("zoo download cnn_20k.v1 resnet18_cifar --to zoo-weights", "ls zoo-weights"),
    "serve": (
        "zoo serve --models cnn_20k --port 18765 > serve.log 2>&1 &",
        "sleep 10",
        "curl -s http://127.0.0.1:18765/healthz; echo",
        "curl -s --data-binary @examples/3-dress.png 'http://127.0.0.1:18765/v1/models/cnn_20k/predict?topk=3'; echo",
        "kill %1; wait; cat serve.log",
    ),
    "benchmark": (
        "zoo benchmark cnn_20k --backends torch,onnxruntime,onnxruntime-int8 --batch-sizes 1,256 --threads 1 "
        "--warmup 0.2 --min-time 0.5 --accuracy-images 500 --data-dir ../shared/data",
    ),
    "tune": ("zoo tune fcn_50k --samples 2 --max-epochs 2 --limit-train 2000 --out runs/tune --data-dir ../shared/data",),
    "plot": ("zoo plot confusion cnn_20k --data-dir ../shared/data --out confusion.png",),
    "study": ("zoo study 'cnn_*'",),
    "experiment": ("zoo experiment fcn-long",),
}  # fmt: skip
HIDDEN = ("sleep ",)  # lines that run but are not shown
WIDTH = {"study": 200}  # terminal columns where 100 would wrap a line the guide shows (a Markdown table)


def _scratch_for_captures(root: Path, scratch: Path) -> Path:
    work = scratch / "work"
    (work / "docs" / "experiments").mkdir(parents=True)
    (scratch / "shared").mkdir()
    (scratch / "shared" / "data").symlink_to((root.parent / "shared" / "data").resolve())
    (work / "examples").symlink_to((root / "examples").resolve())
    (work / "docs" / "runs").symlink_to((root / "docs" / "runs").resolve())
    (work / "docs" / "experiments" / "runs").symlink_to((root / "docs" / "experiments" / "runs").resolve())
    return work


def capture(root: Path, names: list[str]) -> int:
    """Run each guide's example lines and write docs/guides/output/NAME.txt: each line shown, then its output."""
    out = root / "docs" / "guides" / "output"
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TERM": "dumb", "NO_COLOR": "1"}
    env.pop("ZOO_DATA", None)
    with tempfile.TemporaryDirectory(prefix="zoo-capture-") as scratch:
        work = _scratch_for_captures(root, Path(scratch))
        for name in names or list(CAPTURES):
            script = []
            for line in CAPTURES[name]:
                if not line.startswith(HIDDEN):
                    script.append(f"printf '%s\\n' {shlex.quote('$ ' + line)}")  # shown as written, unexpanded
                script.append(line)
            columns = {"COLUMNS": str(WIDTH.get(name, 100))}
            done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=work, env={**env, **columns}, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
            text = done.stdout.replace(str(work) + "/", "").replace(scratch, "/tmp")
            (out / f"{name}.txt").write_text(text.rstrip("\n") + "\n")
            print(f"{name}: exit {done.returncode}, {len(text.splitlines())} lines")
    return 0
