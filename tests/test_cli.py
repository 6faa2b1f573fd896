"""The `zoo` command: every command, its --json contract and its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import zoo
from zoo.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, out, err, *fragments):
    assert code != 0
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_list_table_and_json(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0 and "cnn_20k" in out and "resnet18_c" in out
    code, out, _ = run(capsys, "list", "--json")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == zoo.list_models()
    for row in rows:
        assert {"name", "dataset", "params", "budget", "macs", "accuracy"} <= set(row)
        assert row["params"] <= row["budget"]
        assert row["accuracy"] is None or 0 < row["accuracy"] <= 1


def test_list_with_pattern(capsys):
    code, out, _ = run(capsys, "list", "fcn_*", "--json")
    assert [r["name"] for r in json.loads(out)] == ["fcn_50k", "fcn_100k", "fcn_200k"]
    assert_one_line_error(*run(capsys, "list", "nomatch*"), "no model matches")


def test_info_shows_layers_that_add_up(capsys):
    code, out, _ = run(capsys, "info", "cnn_20k", "--json")
    info = json.loads(out)
    assert sum(layer["params"] for layer in info["layers"]) == info["params"] == zoo.get_spec("cnn_20k").params
    assert sum(layer["macs"] for layer in info["layers"]) == info["macs"]
    assert info["recipe"]["epochs"] >= 1 and info["preprocessing"]["channels"] == 1
    code, out, _ = run(capsys, "info", "resnet18_cifar")
    assert code == 0 and "layer4" in out and "11,173,962" in out


def test_train_then_eval_json(capsys, tmp_path, data_dir):
    out_dir = tmp_path / "run"
    code, out, _ = run(
        capsys, "train", "fcn_50k", "--epochs", "1", "--limit-train", "2000", "--set", "val_size=500",
        "--data-dir", str(data_dir), "--out", str(out_dir), "--seed", "3",
    )  # fmt: skip
    assert code == 0 and "test accuracy" in out
    assert (out_dir / "best.safetensors").is_file() and (out_dir / "last.safetensors").is_file()
    code, out, _ = run(capsys, "eval", "fcn_50k", "--weights", str(out_dir / "best.safetensors"), "--json")
    result = json.loads(out)
    assert code == 0 and result["model"] == "fcn_50k" and 0.5 < result["accuracy"] <= 1
    assert len(result["confusion_matrix"]) == 10 and len(result["per_class"]) == 10


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["info", "cnn_2ok"], ["unknown model", "did you mean 'cnn_20k'"]),
        (["train", "resnet19"], ["unknown model"]),
        (["train", "cnn_10k", "--epochs", "0"], ["invalid value for --epochs"]),
        (["train", "cnn_10k", "--epochs", "many"], ["--epochs"]),
        (["train", "cnn_10k", "--set", "nonsense=1"], ["unknown recipe field"]),
        (["train", "cnn_10k", "--device", "tpu"], ["invalid device"]),
        (["eval", "cnn_10k", "--batch-size", "0"], ["invalid --batch-size 0"]),
        (["list", "--bogus"], ["--bogus"]),
        (["study", "fcn_50k", "--train", "--jobs", "0"], ["--jobs must be at least 1"]),
        (["study", "fcn_50k", "--runs-dir", "/nonexistent"], ["no finished runs"]),
    ],
)
def test_user_errors_are_one_line_and_nonzero(capsys, argv, fragments):
    assert_one_line_error(*run(capsys, *argv), *fragments)


def test_missing_data_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA", str(tmp_path))
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    assert_one_line_error(*run(capsys, "train", "cnn_10k", "--epochs", "1", "--out", str(tmp_path / "r")), "not found")
    assert_one_line_error(*run(capsys, "train", "cnn_10k", "--data-dir", str(tmp_path / "absent")), "does not exist")


def test_bad_weights_file_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_text("not a checkpoint")
    assert_one_line_error(*run(capsys, "eval", "cnn_10k", "--weights", str(bad)), "not a valid safetensors file")
    assert_one_line_error(*run(capsys, "eval", "cnn_10k", "--weights", str(tmp_path / "nope")), "does not exist")


def test_console_script_exit_status_and_no_traceback():
    env = dict(os.environ)
    env.pop("ZOO_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "info", "nonexistent"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown model") and "Traceback" not in done.stderr
    env["ZOO_DEBUG"] = "1"
    debug = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "info", "nonexistent"], capture_output=True, text=True, env=env
    )
    assert "Traceback" in debug.stderr


def test_every_help_text_shows_its_brackets(capsys) -> None:
    """Typer renders help as Rich markup, where "[openvino]" is a style tag that vanishes unless escaped:
    every bracketed word a help text holds (an extra, a default) must reach the screen."""
    import re

    import click
    import typer

    from zoo.cli import app

    command = typer.main.get_command(app)
    commands = [(name, sub) for name, sub in command.commands.items() if not isinstance(sub, click.Group)]
    for name, sub in commands:
        for parameter in sub.params:
            for word in re.findall(r"\[(\w+)\]", getattr(parameter, "help", None) or ""):
                assert main([name, "--help"]) == 0
                shown = " ".join(capsys.readouterr().out.replace("│", " ").split())
                assert f"[{word}]" in shown, f"zoo {name} {parameter.name}: [{word}] is lost in --help"
