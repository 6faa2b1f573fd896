"""Short real training runs on Fashion-MNIST subsets: the loop learns, resumes, and writes what it promises."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import zoo
from zoo.cli import main
from zoo.core.checkpoint import read_checkpoint
from zoo.core.errors import WeightsError, ZooError
from zoo.core.rundir import RunDir
from zoo.study import run_study
from zoo.training import TrainingInterrupted

QUICK = {"limit_train": 4000, "val_size": 1000, "batch_size": 128, "progress": False}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("run") / "cnn_10k"
    result = zoo.train("cnn_10k", epochs=3, out=out, data_dir=data_dir, seed=0, **QUICK)
    return result, out


def test_loss_falls_and_accuracy_rises_well_above_chance(quick_run):
    result, out = quick_run
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert records[-1]["val_accuracy"] > records[0]["val_accuracy"] - 0.02
    assert result.test_accuracy > 0.6  # chance is 0.1
    assert result.val_accuracy == max(r["val_accuracy"] for r in records)


def test_run_folder_holds_config_report_and_checkpoints_with_metadata(quick_run):
    result, out = quick_run
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "cnn_10k" and config["recipe"]["epochs"] == 3 and config["train_images"] == 4000
    report = json.loads((out / "report.json").read_text())
    assert report["test_accuracy"] == result.test_accuracy and report["params"] == zoo.get_spec("cnn_10k").params
    _, meta = read_checkpoint(out / "best.safetensors")
    for key in ("model", "recipe", "epoch", "val_accuracy", "test_accuracy", "dataset", "versions", "git_commit"):
        assert key in meta, key
    assert meta["model"] == "cnn_10k" and json.loads(meta["recipe"])["epochs"] == 3
    assert abs(json.loads(meta["test_accuracy"]) - result.test_accuracy) < 1e-9


def test_evaluate_reproduces_the_reported_test_accuracy(quick_run, data_dir):
    result, out = quick_run
    evaluation = zoo.evaluate("cnn_10k", weights=out / "best.safetensors", data_dir=data_dir)
    assert evaluation.accuracy == pytest.approx(result.test_accuracy, abs=1e-6)
    assert sum(map(sum, evaluation.confusion_matrix)) == 10000
    assert set(evaluation.per_class) == set(zoo.get_spec("cnn_10k").classes)


def test_resume_continues_the_run_as_it_was_started(tmp_path, data_dir, monkeypatch):
    """Killed after epoch 1 of 3, a plain resume trains epochs 2 and 3 of that run (not the registry's 150)."""
    out = tmp_path / "run"
    save_last = RunDir.save_last

    def save_then_stop(run, tensors, meta):
        save_last(run, tensors, meta)
        if meta.get("epoch") == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunDir, "save_last", save_then_stop)
    with pytest.raises(TrainingInterrupted, match="can be resumed"):
        zoo.train("fcn_50k", epochs=3, out=out, data_dir=data_dir, **QUICK)
    monkeypatch.undo()
    first_epoch_weights, _ = read_checkpoint(out / "last.safetensors")
    zoo.train("fcn_50k", resume=out, data_dir=data_dir, **QUICK)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["epochs"]) for r in records] == [(1, 3), (2, 3), (3, 3)]
    tensors, meta = read_checkpoint(out / "last.safetensors")
    assert meta["epoch"] == "3"
    assert not torch.equal(tensors["model.1.weight"], first_epoch_weights["model.1.weight"])
    # the report's training time is the run's, both processes together (what a user compares runs by)
    report = json.loads((out / "report.json").read_text())
    assert report["train_seconds"] == pytest.approx(records[-1]["elapsed_seconds"], abs=0.01)
    assert report["train_seconds"] > records[-1]["elapsed_seconds"] - records[0]["elapsed_seconds"]


def test_resume_refuses_a_changed_recipe_and_extends_only_when_asked(tmp_path, data_dir):
    out = tmp_path / "run"
    zoo.train("fcn_50k", epochs=2, out=out, data_dir=data_dir, **QUICK)
    with pytest.raises(ZooError, match="started with epochs=2, not 4.*extend=True"):
        zoo.train("fcn_50k", epochs=4, resume=out, data_dir=data_dir, **QUICK)
    with pytest.raises(ZooError, match="started with lr=0.1, not 0.5"):
        zoo.train("fcn_50k", lr=0.5, epochs=4, extend=True, resume=out, data_dir=data_dir, **QUICK)
    # While another process trains the run (here: this test holds its lock), a resume is refused untouched.
    metrics = (out / "metrics.jsonl").read_text()
    with RunDir(out).lock(), pytest.raises(ZooError, match="being trained by another process"):
        zoo.train("fcn_50k", epochs=4, extend=True, resume=out, data_dir=data_dir, **QUICK)
    assert (out / "metrics.jsonl").read_text() == metrics
    zoo.train("fcn_50k", epochs=4, extend=True, resume=out, data_dir=data_dir, **QUICK)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["epochs"]) for r in records] == [(1, 2), (2, 2), (3, 4), (4, 4)]
    # The learning rate goes on from where it stood at epoch 2: no jump back up to a longer cosine's value.
    learning_rates = [r["lr"] for r in records]
    assert 0 < learning_rates[3] <= learning_rates[2] <= learning_rates[1] * 1.0001
    assert json.loads((out / "config.json").read_text())["recipe"]["epochs"] == 4


def test_same_seed_gives_the_same_run(tmp_path, data_dir):
    small = dict(QUICK, limit_train=1000)
    a = zoo.train("fcn_50k", epochs=1, out=tmp_path / "a", data_dir=data_dir, **small)
    b = zoo.train("fcn_50k", epochs=1, out=tmp_path / "b", data_dir=data_dir, **small)
    assert a.test_accuracy == b.test_accuracy


def _strict_json(text: str) -> object:
    """JSON as other tools read it: NaN is not JSON."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in a record"))


def test_without_a_validation_split_the_last_epoch_is_kept_and_the_records_say_null(tmp_path, data_dir, capsys):
    """val_size=0 trains on every image: nothing chooses an epoch, and the records hold null, not NaN."""
    out = tmp_path / "all"
    result = zoo.train("fcn_50k", epochs=2, out=out, data_dir=data_dir, **dict(QUICK, limit_train=1000, val_size=0))
    assert result.val_accuracy is None and result.best_epoch == 2 and result.test_accuracy > 0.3
    records = [_strict_json(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["val_accuracy"], r["val_loss"]) for r in records] == [(None, None), (None, None)]
    assert _strict_json((out / "report.json").read_text())["val_accuracy"] is None
    assert json.loads((out / "config.json").read_text())["train_images"] == 1000
    # A study of such runs ships its first seed by rule (tests/test_study.py has the rule), the card saying why.
    (study,) = run_study(["fcn_50k"], runs_dir=_as_study_runs(out, tmp_path / "runs"), docs_dir=tmp_path / "docs")
    assert study.val_accuracies == [None] and study.best_seed == 0
    assert main(["plot", "curves", str(out), "--out", str(tmp_path / "c.png")]) == 0
    assert "best validation accuracy none" in capsys.readouterr().out


def _as_study_runs(run, runs_dir):
    shutil.copytree(run, runs_dir / "fcn_50k" / "seed0", ignore=shutil.ignore_patterns("*.safetensors"))
    return runs_dir


def test_existing_run_folder_is_never_overwritten(quick_run, data_dir):
    _, out = quick_run
    with pytest.raises(ZooError, match="already holds a run"):
        zoo.train("cnn_10k", epochs=1, out=out, data_dir=data_dir, **QUICK)


def test_bad_weights_are_refused_with_clear_errors(tmp_path, quick_run):
    _, out = quick_run
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        zoo.create_model("cnn_10k", weights=garbage)
    with pytest.raises(WeightsError, match="holds weights for 'cnn_10k', not 'cnn_20k'"):
        zoo.create_model("cnn_20k", weights=out / "best.safetensors")
    with pytest.raises(WeightsError, match="does not exist"):
        zoo.create_model("cnn_10k", weights=tmp_path / "missing.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes((out / "best.safetensors").read_bytes()[:-100])
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        zoo.create_model("cnn_10k", weights=truncated)


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    from zoo.cli import main

    assert main(["train", "fcn_50k", "--epochs", "1", "--data-dir", str(tmp_path)]) == 2
    assert main(["train", "fcn_50k", "--epochs", "1", "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path)]) == 2
    assert not (tmp_path / "runs").exists() and not (tmp_path / "run").exists()  # the test runs in tmp_path
