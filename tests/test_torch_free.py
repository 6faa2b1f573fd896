"""The default install has no torch: list, info, predict, serve and benchmark on ONNX Runtime work without it,
and what needs the [torch] extra says so in one line. Each test runs zoo in a fresh interpreter in which the
[torch] extra's packages cannot be imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "3-dress.png"
BLOCK = "import sys\nfor name in ('torch', 'torchvision', 'timm', 'onnx', 'onnxscript', 'safetensors'):\n    sys.modules[name] = None\n"


def without_torch(code: str) -> subprocess.CompletedProcess:
    script = (
        BLOCK + code + "\nassert 'torch' not in {m.split('.')[0] for m in sys.modules if sys.modules[m] is not None}\n"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


def zoo_without_torch(*args: str) -> subprocess.CompletedProcess:
    return without_torch(
        f"from zoo.cli import main\nsys.stdout.flush()\ncode = main({list(args)!r})\nsys.stdout.flush()\nassert code == 0, code"
    )


def test_list_and_info_answer_from_the_catalog():
    listed = zoo_without_torch("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {row["name"] for row in json.loads(listed.stdout)} >= {"cnn_20k", "cifar_cnn_best"}
    info = zoo_without_torch("info", "cnn_20k", "--json")
    assert info.returncode == 0, info.stderr
    assert len(json.loads(info.stdout)["layers"]) > 5


def test_predict_runs_every_shipped_tag_on_onnx_runtime():
    from zoo.core.weights import manifest, tags

    for name in manifest():
        for tag in tags(name):
            done = zoo_without_torch("predict", "--model", f"{name}.{tag}", str(EXAMPLE), "--json")
            assert done.returncode == 0, (name, tag, done.stderr)
            assert json.loads(done.stdout)["backend"] == "onnxruntime"


def test_the_server_answers_without_torch():
    pytest.importorskip("httpx")
    done = without_torch(f"""
from fastapi.testclient import TestClient
from zoo.serve import create_app
client = TestClient(create_app(["cnn_20k"]))
answer = client.post("/v1/models/cnn_20k/predict", content=open({str(EXAMPLE)!r}, "rb").read())
assert answer.status_code == 200 and answer.json()["top"][0]["class"] == "Dress", answer.text
""")
    assert done.returncode == 0, done.stderr


def test_benchmark_on_onnx_runtime_needs_no_torch(data_dir):
    done = zoo_without_torch(
        "benchmark", "cnn_10k", "--backends", "onnxruntime,torch", "--batch-sizes", "1", "--min-time", "0.1",
        "--accuracy-images", "200", "--data-dir", str(data_dir), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {row["backend"]: row for row in json.loads(done.stdout)["rows"]}
    assert rows["onnxruntime"]["skipped"] is None and rows["onnxruntime"]["accuracy"] > 0.8
    assert "zoo-classifiers[torch]" in rows["torch"]["skipped"]


@pytest.mark.parametrize("args", [["train", "cnn_10k", "--epochs", "1"], ["eval", "cnn_10k"], ["export", "cnn_10k"]])
def test_what_needs_torch_says_which_extra_in_one_line(args):
    done = without_torch(f"from zoo.cli import main\nsys.exit(main({args!r}))")
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "zoo-classifiers[torch]"' in lines[0], done.stderr
