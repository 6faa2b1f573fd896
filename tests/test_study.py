"""The study aggregates real run folders: here, two quick seeds of fcn_50k trained in two worker processes."""

from __future__ import annotations

import datetime
import json
import shutil
import statistics

import pytest

import zoo
from zoo.core.files import sha256_file
from zoo.core.recipe import Recipe
from zoo.core.weights import ship
from zoo.study import REFERENCE, run_study


@pytest.fixture(scope="module")
def study(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("study")
    results = run_study(
        ["fcn_50k"], runs_dir=root / "runs", docs_dir=root / "docs", seeds=[0, 1], train=True, jobs=2, ship_weights=True,
        weights_dir=root / "weights", data_dir=data_dir, epochs=1, limit_train=2000, val_size=500, progress=False,
    )  # fmt: skip
    return root, results


def test_aggregates_every_seed_and_ships_the_best_validation_run(study):
    root, (result,) = study
    reports = [json.loads((root / "runs" / "fcn_50k" / f"seed{s}" / "report.json").read_text()) for s in (0, 1)]
    assert result.seeds == [0, 1]
    assert result.mean == pytest.approx(statistics.fmean(r["test_accuracy"] for r in reports))
    best = max(reports, key=lambda r: r["val_accuracy"])
    assert result.shipped_accuracy == best["test_accuracy"]
    entry = json.loads((root / "weights" / "manifest.json").read_text())["fcn_50k"]
    assert entry["default"] == "v1" and entry["tags"]["v1"]["metrics"]["test_accuracy"] == best["test_accuracy"]
    shipped = root / "weights" / "fcn_50k.v1.safetensors"
    assert entry["tags"]["v1"]["sha256"] == sha256_file(shipped)
    evaluation = zoo.evaluate("fcn_50k", weights=shipped)
    assert evaluation.accuracy == pytest.approx(best["test_accuracy"], abs=1e-6)


def test_a_shipped_tag_is_a_complete_record_with_its_onnx_file_exported_in_process(study):
    """Everything needed to know and reproduce the weights, from the run that shipped; the ONNX export (in the
    same process as the shipping, which the registry must follow) adds its file, hash and size."""
    root, (result,) = study
    record = json.loads((root / "weights" / "manifest.json").read_text())["fcn_50k"]["tags"]["v1"]
    config = json.loads((root / "runs" / "fcn_50k" / f"seed{result.best_seed}" / "config.json").read_text())
    assert record["recipe"] == Recipe(**config["recipe"]).to_dict() and record["recipe"]["seed"] == result.best_seed
    assert record["arch"] == {"widths": [54, 54, 54]} and (record["tta_flip"], record["tta_shift"]) == (True, False)
    assert record["dataset"] == "fashion_mnist" and record["commit"] == config["git_commit"]
    assert record["seed_test_accuracies"] == {"0": result.test_accuracies[0], "1": result.test_accuracies[1]}
    assert datetime.date.fromisoformat(record["date"]) <= datetime.date.today()
    weights = root / "weights"
    assert (weights / record["file"]).stat().st_size == record["size"]
    assert (weights / record["onnx_file"]).stat().st_size == record["onnx_size"]
    assert sha256_file(weights / record["onnx_file"]) == record["onnx_sha256"]


def test_reshipping_adds_a_tag_and_never_changes_an_earlier_file(study):
    root, (result,) = study
    weights = root / "weights"
    first = (weights / "fcn_50k.v1.safetensors").read_bytes()
    other = next(s for s in result.seeds if s != result.best_seed)
    checkpoint = root / "runs" / "fcn_50k" / f"seed{other}" / "best.safetensors"
    assert ship(weights, "fcn_50k", "fashion_mnist", checkpoint, {"seed": other}) == "v2"
    entry = json.loads((weights / "manifest.json").read_text())["fcn_50k"]
    assert entry["default"] == "v2" and set(entry["tags"]) == {"v1", "v2"}
    assert (weights / "fcn_50k.v1.safetensors").read_bytes() == first
    assert (weights / "fcn_50k.v2.safetensors").read_bytes() == checkpoint.read_bytes()
    # The same bytes shipped again keep their tag.
    assert ship(weights, "fcn_50k", "fashion_mnist", checkpoint, {"seed": other}) == "v2"


def test_writes_table_plot_and_model_card(study):
    root, _ = study
    table = (root / "docs" / "study.md").read_text()
    assert "`fcn_50k`" in table and f"{REFERENCE['fcn_50k'][0]:.1%}" in table
    assert (root / "docs" / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (root / "docs" / "models" / "fcn_50k.md").read_text()
    assert f"{zoo.get_spec('fcn_50k').params:,}" in card and "seed" in card


def test_rerun_without_training_reuses_the_runs(study, data_dir):
    root, (first,) = study
    (again,) = run_study(["fcn_50k"], runs_dir=root / "runs", docs_dir=root / "docs2")
    assert again.test_accuracies == first.test_accuracies


def test_records_without_checkpoints_rebuild_the_docs_but_cannot_ship(study, tmp_path):
    """What is committed under docs/runs: config, metrics and report, no checkpoints."""
    root, (first,) = study
    records = tmp_path / "runs"
    shutil.copytree(root / "runs", records, ignore=shutil.ignore_patterns("*.safetensors"))
    (again,) = run_study(["fcn_50k"], runs_dir=records, docs_dir=tmp_path / "docs")
    assert again.shipped_accuracy == first.shipped_accuracy
    assert (tmp_path / "docs" / "models" / "fcn_50k.md").is_file()
    with pytest.raises(zoo.ZooError, match="cannot ship fcn_50k"):
        run_study(["fcn_50k"], runs_dir=records, docs_dir=tmp_path / "docs", ship_weights=True, weights_dir=tmp_path)
    assert not list(tmp_path.glob("fcn_50k*.safetensors"))


def test_a_study_of_one_model_keeps_the_others_in_the_comparison(study, tmp_path):
    """Re-shipping one model rewrites the table from every model's records, not just the one named."""
    root, (first,) = study
    records = tmp_path / "runs"
    shutil.copytree(root / "runs", records, ignore=shutil.ignore_patterns("*.safetensors"))
    shutil.copytree(records / "fcn_50k", records / "cnn_10k")  # any records stand in for a second model's
    run_study(["cnn_10k"], runs_dir=records, docs_dir=tmp_path / "docs")
    table = (tmp_path / "docs" / "study.md").read_text()
    assert "`fcn_50k`" in table and "`cnn_10k`" in table
    assert not (tmp_path / "docs" / "models" / "fcn_50k.md").exists()  # cards only for the models named


def test_runs_that_held_nothing_out_ship_the_first_seed_whatever_the_others_test(tmp_path, data_dir):
    """With val_size=0 nothing ranks the seeds but the test set, so the rule is fixed in advance: seed 0 ships,
    even where another seed tests higher, and the card says why. Seeds trained some each way are refused."""
    runs = tmp_path / "runs"
    run_study(
        ["fcn_50k"], runs_dir=runs, docs_dir=tmp_path / "docs", seeds=[0, 1], train=True, jobs=1, data_dir=data_dir,
        epochs=1, limit_train=2000, val_size=0, progress=False,
    )  # fmt: skip
    reports = [runs / "fcn_50k" / f"seed{s}" / "report.json" for s in (0, 1)]
    assert [json.loads(r.read_text())["val_accuracy"] for r in reports] == [None, None]
    first = json.loads(reports[0].read_text())
    second = json.loads(reports[1].read_text())
    second["test_accuracy"] = first["test_accuracy"] + 0.05  # seed 1 now tests better: it must still not ship
    reports[1].write_text(json.dumps(second))
    (result,) = run_study(["fcn_50k"], runs_dir=runs, docs_dir=tmp_path / "docs")
    assert result.best_seed == 0 and result.shipped_accuracy == first["test_accuracy"]
    assert result.val_accuracies == [None, None]
    card = (tmp_path / "docs" / "models" / "fcn_50k.md").read_text()
    assert "(seed 0, the first seed: the runs trained on every training image" in card
    assert "| 1 | — |" in card
    second["val_accuracy"] = 0.5
    reports[1].write_text(json.dumps(second))
    with pytest.raises(zoo.ZooError, match="seed0 has no validation accuracy .* and other seeds do"):
        run_study(["fcn_50k"], runs_dir=runs, docs_dir=tmp_path / "docs")
