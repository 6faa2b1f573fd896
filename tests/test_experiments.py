"""The studies' reference networks (exact parameter counts) and `zoo experiment` on a real, tiny run."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

import zoo
from zoo import experiments
from zoo.cli import main
from zoo.cli.study import experiment_command
from zoo.core.summary import count_params
from zoo.experiments import Experiment, Variant

DOCS = Path(__file__).resolve().parents[1] / "docs" / "experiments"

# The figures the studies printed (their model summaries), not the registry's: the registry must match them.
STUDY_PARAMETERS = {
    "ref_keras_cnn": 37_146,
    "ref_keras_pool": 37_146,
    "ref_3block_cnn": 390_410,
    "ref_lenet_bn": 82_078,
    "ref_lenet_silu": 82_078,
}


@pytest.mark.parametrize("name", STUDY_PARAMETERS)
def test_reference_networks_have_the_studies_parameter_counts(name):
    spec = zoo.get_spec(name)
    assert count_params(spec.build()) == STUDY_PARAMETERS[name] == spec.params
    assert spec.family == "ref" and spec.dataset == "cifar10"


def test_reference_variants_differ_only_where_the_study_did():
    strided, pooled = zoo.create_model("ref_keras_cnn").network, zoo.create_model("ref_keras_pool").network
    assert [m.stride for m in strided.modules() if hasattr(m, "stride") and hasattr(m, "kernel_size")][:4] == [
        (1, 1), (2, 2), (1, 1), (2, 2),
    ]  # fmt: skip
    assert sum(type(m).__name__ == "MaxPool2d" for m in pooled.modules()) == 2
    relu, silu = zoo.create_model("ref_lenet_bn").network, zoo.create_model("ref_lenet_silu").network
    assert {type(m).__name__ for m in relu} - {type(m).__name__ for m in silu} == {"ReLU"}


def test_reference_models_follow_the_zoo_models_in_the_list():
    names = zoo.list_models()
    assert names[:9] == zoo.list_models("*")[:9] and all(n.startswith("ref_") for n in names[9:])
    assert len(names) == 9 + len(STUDY_PARAMETERS)


def test_variant_keys_name_what_defines_a_run():
    a = Variant("a", "ref_lenet_bn", "study")
    assert a.key() == Variant("another label", "ref_lenet_bn", "study").key()  # the label is not the run
    assert a.key() != Variant("a", "ref_lenet_bn", "zoo").key()
    assert a.key() != Variant("a", "ref_lenet_bn", "study", {"hflip": True}).key()
    small = Variant("a", "ref_lenet_bn", "study", limit_train=10)
    assert small.key() != a.key() and "-n10-" in small.key()
    assert small.resolved_recipe().epochs > a.resolved_recipe().epochs  # tiny sets train for more epochs


def test_an_experiment_trains_reuses_and_documents_its_runs(data_dir, monkeypatch, capsys, tmp_path):
    tiny = Experiment(
        "tiny",
        "tiny: ReLU or SiLU",
        (
            Variant("ReLU", "ref_lenet_bn", "study", {"epochs": 1, "val_size": 500}, limit_train=512),
            Variant("SiLU", "ref_lenet_silu", "study", {"epochs": 1, "val_size": 500}, limit_train=512),
        ),
        "Which activation?",
    )
    monkeypatch.setitem(experiments.EXPERIMENTS, "tiny", tiny)
    assert main(["experiment", "tiny", "--docs-dir", str(tmp_path), "--train", "--data-dir", str(data_dir)]) == 0
    assert "wrote" in capsys.readouterr().out
    table = (tmp_path / "experiments" / "tiny.md").read_text()
    assert "| ReLU | `ref_lenet_bn` | study | 512 |" in table and "| SiLU |" in table
    assert (tmp_path / "experiments" / "tiny.png").read_bytes()[:4] == b"\x89PNG"
    runs = sorted((tmp_path / "experiments" / "runs").glob("*/*/report.json"))
    assert len(runs) == 2
    reports = [json.loads(r.read_text()) for r in runs]
    assert all(0.1 < r["test_accuracy"] < 1 for r in reports)  # trained on real data, scored on the test set
    # A second call trains nothing: the finished runs are reused as they are.
    stamps = [r.stat().st_mtime_ns for r in runs]
    assert main(["experiment", "tiny", "--docs-dir", str(tmp_path), "--train", "--json"]) == 0
    assert [r.stat().st_mtime_ns for r in runs] == stamps
    rows = json.loads(capsys.readouterr().out)["tiny"]
    assert [row["label"] for row in rows] == ["ReLU", "SiLU"]


def test_a_seeded_experiment_trains_each_variant_per_seed_and_tables_means(data_dir, monkeypatch, tmp_path):
    quick = {"epochs": 1, "val_size": 500}
    seeded = Experiment(
        "seeded",
        "seeded: flips or not",
        (
            Variant("flips", "fcn_50k", overrides={**quick, "teacher": ""}, limit_train=512),
            Variant("no flips", "fcn_50k", overrides={**quick, "teacher": "", "hflip": False}, limit_train=512),
        ),
        "Do flips help?",
        seeds=(0, 1),
    )
    assert seeded.variants[0].seeded(0) is seeded.variants[0]  # the recipe's own seed keeps the run's key
    monkeypatch.setitem(experiments.EXPERIMENTS, "seeded", seeded)
    rows = experiments.run_experiment("seeded", docs_dir=tmp_path, train=True, data_dir=data_dir)
    assert [(r.label, r.seed) for r in rows] == [("flips", 0), ("flips", 1), ("no flips", 0), ("no flips", 1)]
    assert len({r.run for r in rows}) == 4 and rows[0].test_accuracy != rows[1].test_accuracy  # two seeds, two runs
    table = (tmp_path / "experiments" / "seeded.md").read_text()
    for summary in experiments.summaries(rows):
        mean = sum(summary.val) / 2
        assert f"| {summary.label} | 2 | " in table and f"{mean:.2%} ± " in table
    best = max(experiments.summaries(rows), key=lambda s: sum(s.val))
    assert f"| {best.label} | 2 | **" in table  # chosen on validation
    assert (tmp_path / "experiments" / "seeded.png").read_bytes()[:4] == b"\x89PNG"


def test_the_hardware_line_names_each_machine_with_the_variants_it_trained():
    """Training times compare only within one machine, so a table whose variants ran on two says which ran where."""

    def row(label: str, machine: str, seed: int) -> experiments.Row:
        return experiments.Row(
            label, "fcn_50k", "zoo", 100, 1, 1, None, 0.9, 0.9, 1.0, "run", seed=seed, hardware=machine
        )

    xeon = [row("a, b", "Xeon", seed) for seed in (0, 1)]
    assert experiments._hardware(xeon) == "Xeon"
    assert experiments._hardware([*xeon, row("c", "EPYC", 0)]) == 'Xeon for "a, b"; EPYC for "c"'


def test_a_seeds_table_over_two_models_chooses_one_variant_for_each():
    """An experiment that lengthens two models' schedules picks each model's best; one model's cannot hide the other's."""

    def row(label: str, model: str, val: float, seed: int) -> experiments.Row:
        return experiments.Row(label, model, "zoo", 100, 1, 1, None, val, 0.9, 1.0, "run", seed=seed, hardware="EPYC")

    rows = [
        *(row("a short", "fcn_100k", 0.90, s) for s in (0, 1)),
        *(row("a long", "fcn_100k", 0.91, s) for s in (0, 1)),
        *(row("b short", "fcn_200k", 0.93, s) for s in (0, 1)),
        *(row("b long", "fcn_200k", 0.92, s) for s in (0, 1)),
    ]
    two = Experiment("two", "two models", (), "Which schedule, per model?", seeds=(0, 1))
    table = experiments.seeds_markdown(two, rows, len(rows))
    bold = sorted(line.split(" |")[0].strip("| ") for line in table.splitlines() if "**" in line)
    assert bold == ["a long", "b short"] and "The choice (one per model)" in table


@pytest.mark.parametrize("name", [n for n in experiments.names() if (DOCS / f"{n}.md").is_file()])
def test_a_published_experiment_s_runs_are_all_found_under_the_keys_the_code_computes(name):
    """A committed table stays reproducible: every run it plans is committed under the folder name the code
    derives from the variant, so `zoo experiment NAME --train` reuses them all instead of training again
    (a recipe field added later, or a registry recipe changed under a variant, would orphan them), and the
    table is the one those records give."""
    experiment = experiments.EXPERIMENTS[name]
    planned = [v.seeded(seed) for v in experiment.variants for seed in experiment.seeds]
    rows = [experiments._row(v, v.run_dir(DOCS / "runs")) for v in planned]
    assert all(rows), [v.label for v, row in zip(planned, rows, strict=True) if row is None]
    write = experiments.writer(experiment)
    assert write(experiment, rows, len(rows)) == (DOCS / f"{name}.md").read_text()


def test_unknown_experiment_and_untrained_experiment_are_one_line_errors(capsys, tmp_path):
    assert main(["experiment", "colour"]) != 0
    assert "unknown experiment 'colour'" in capsys.readouterr().err
    assert main(["experiment", "augmentation", "--docs-dir", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "no finished run" in err and "--train" in err and len(err.strip().splitlines()) == 1


def test_the_cli_names_every_experiment():
    """`zoo experiment --help` lists the experiments without importing them (that would import torch at every
    command's start), so the list is written out: it must name each one, in the registry's order."""
    hint = typing.get_type_hints(experiment_command, include_extras=True)["name"]
    assert hint.__metadata__[0].help == f"{', '.join(experiments.names())} or all."
