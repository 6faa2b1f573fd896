"""The README's figures are the records' figures: every accuracy it prints for shipped weights, and the
tables that commands regenerate, are checked here against the manifest and the committed run records, so
that a re-shipped model cannot leave a stale number in prose."""

from __future__ import annotations

import importlib.util
import json
import re
import statistics
from pathlib import Path

import pytest
import torch

import zoo
from zoo import experiments
from zoo.bench.report import readme_table
from zoo.core.models.cifar import AIRBENCH_RECIPE
from zoo.core.rundir import RunDir
from zoo.core.weights import manifest, shipped_weights, tag_of
from zoo.study import REFERENCE, collect, markdown_table

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
FASHION_MNIST = [n for n in zoo.list_models() if n.startswith(("fcn_", "cnn_"))]


def tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table in `text`, as rows of stripped cells (the header first, the rule dropped)."""
    found, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(set(cell) <= set("-: ") for cell in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def table_with(header_cell: str) -> list[list[str]]:
    (table,) = [t for t in tables(README) if header_cell in t[0]]
    return table


def percent(text: str) -> float:
    return float(re.search(r"([\d.]+)%", text).group(1)) / 100


def test_the_study_table_is_the_one_zoo_study_writes_from_the_records():
    expected = markdown_table(collect(FASHION_MNIST, REPO / "docs" / "runs"))
    assert expected in README, "README's FCN-vs-CNN table differs from `zoo study`'s: rerun `zoo study` and copy it"


def test_the_goals_sentence_names_the_models_at_their_goals():
    """README names exactly the Fashion-MNIST models whose 3-seed mean reaches their goal."""
    # A mean is a count of right answers over 10,000 images a seed: rounding keeps float error from deciding.
    studies = collect(FASHION_MNIST, REPO / "docs" / "runs")
    reached = [s.name for s in studies if round(s.mean, 6) >= REFERENCE[s.name][2]]
    names = ", ".join(f"`{name}`" for name in reached)
    if not reached:
        sentence = "none reaches its goal yet"
    elif len(reached) == len(FASHION_MNIST):
        sentence = "every one reaches its goal"
    else:
        sentence = f"{names} {'reaches its goal' if len(reached) == 1 else 'reach their goals'}, the others not yet"
    assert sentence in " ".join(README.split()), sentence


def test_every_shipped_accuracy_in_a_model_table_is_the_manifest_s():
    """Tables with a "shipped weights" column (Fashion-MNIST and CIFAR-10) show each default tag's accuracy."""
    checked = set()
    for table in tables(README):
        header = table[0]
        columns = [i for i, cell in enumerate(header) if cell.startswith("shipped weights")]
        if header[0] != "model" or not columns:
            continue
        for row in table[1:]:
            name = row[0].strip("`")
            if name in manifest():
                assert row[columns[0]].startswith(f"{shipped_weights(name).metrics['test_accuracy']:.2%}"), name
                checked.add(name)
            else:
                assert not re.match(r"[\d.]+%", row[columns[0]]), (
                    f"{name} ships no weights, yet the README says it does"
                )
    assert checked == set(manifest())


def test_the_airbench_ablation_figures_are_the_experiment_s():
    """The README's sentence on airbench's mechanisms quotes `zoo experiment airbench-ablation`'s table."""
    written = (REPO / "docs" / "experiments" / "airbench-ablation.md").read_text()
    (table,) = [t for t in tables(written) if "variant" in t[0]]
    header, rows = table[0], table[1:]
    changes = {row[header.index("change")] for row in rows[1:]}
    full_recipe = rows[0][header.index("test acc., 6 views")].strip("*")
    sentence = README[README.index("`zoo experiment airbench-ablation --train`") :].split("`python3")[0]
    assert full_recipe in sentence
    quoted = re.findall(r"\(([-+]\d\.\d\d)\b", sentence) + re.findall(r"\(([-+]\d\.\d\d) points", sentence)
    assert len(set(quoted)) == len(changes) and set(quoted) <= changes, (quoted, changes)
    anchor = float(re.search(r"([\d.]+)%\s+after 10 epochs", README).group(1))
    under = float(re.search(r"([\d.]+)\s+under\s+the\s+anchor.s\s+10-epoch", sentence).group(1))
    assert round(anchor - float(full_recipe.rstrip("%")), 2) == under


def test_the_export_fidelity_table_measured_the_shipped_weights():
    """`python3 -m zoo.export.report --test-images 10000`: PyTorch's accuracy on the whole test set is the card's."""
    table = table_with("fp32 top-1 agreement")
    rows = [row for row in table[1:] if row[1] == "shipped"]
    assert rows
    for row in rows:
        accuracy = shipped_weights(row[0]).metrics["test_accuracy"]
        for cell in row[4:6]:  # int8 and fp16: "+0.01% (93.11%→93.12%)"
            assert percent(cell.split("(")[1]) == pytest.approx(accuracy, abs=5e-5), row[0]


# The files README's benchmark table is printed from, in order (a later file's rows replace an earlier one's).
BENCHMARK_RESULTS = (
    "results-epyc-2core.json",
    "results-epyc-2core-fashion-mnist.json",
    "results-epyc-2core-cnn-ema.json",
    "results-epyc-2core-fcn-long.json",
    "results-epyc-zen3-2core-fcn.json",
    "results-epyc-zen3-2core-cnn100k.json",
    "results-xeon-2core-cifar_cnn_best.json",
    "results-xeon-2core-resnet18_cifar.json",
)


def test_the_benchmark_table_is_printed_from_the_saved_results_of_the_shipped_weights():
    """`python3 benchmarks/readme_table.py` prints README's table; each row names the weights it measured,
    and a model that ships weights was measured with its default ones."""
    results = [json.loads((REPO / "benchmarks" / name).read_text()) for name in BENCHMARK_RESULTS]
    assert readme_table(results, tag_of) in README
    assert f"python3 benchmarks/readme_table.py {' '.join(f'benchmarks/{n}' for n in BENCHMARK_RESULTS)}" in README
    rows = table_with("eager accuracy, 1,000 test images (weights)")[1:]
    assert [row[0] for row in rows] == zoo.list_models()[:9]
    for row in rows:
        shipped = shipped_weights(row[0]) if row[0] in manifest() else None
        assert row[-1].endswith(f"({shipped.tag})" if shipped else "(random init)"), row


def _load_test_module():
    path = REPO / "benchmarks" / "load_test.py"
    spec = importlib.util.spec_from_file_location("load_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SERVE_RECORDS = sorted((REPO / "benchmarks").glob("results-serve-*.json"))


@pytest.mark.parametrize("record", SERVE_RECORDS, ids=[r.name for r in SERVE_RECORDS])
def test_the_serving_figures_are_the_load_test_record_s(record):
    """A load-test record the README cites is quoted as `load_test.py --summary` prints it."""
    report = json.loads(record.read_text())
    if f"benchmarks/{record.name}" not in README or "hostile_mix" not in report:
        pytest.skip(f"{record.name} is not cited, or predates --summary")
    assert _load_test_module().summary(report) in README


def test_the_installed_sizes_are_the_measured_ones():
    """`bash benchmarks/install_size.sh` wrote benchmarks/results-install-size.json; the README quotes it."""
    measured = json.loads((REPO / "benchmarks" / "results-install-size.json").read_text())
    rows = {row[0]: row for row in table_with("installed size")[1:]}
    for variant, label in (("default", "`pip install zoo-classifiers`"), ("gpu", '`pip install "zoo-classifiers[gpu]"`'),
                           ("torch", '`pip install "zoo-classifiers[torch]"`')):  # fmt: skip
        assert rows[label][1] == f"{measured[variant]['installed_mib']:,} MiB", variant
    assert not measured["default"]["torch"] and measured["default"]["cuda_packages"] == 0
    wheel = measured["wheel_bytes"]
    assert f"builds the wheel from the checkout ({wheel / 1e6:.1f} MB: {wheel:,} bytes)" in " ".join(README.split())


def test_the_weights_fetched_on_first_use_are_the_cifar_models_default_files():
    cifar = [shipped_weights(n) for n, e in manifest().items() if e["dataset"] == "cifar10"]
    megabytes = sum((REPO / "weights" / f).stat().st_size for w in cifar for f in (w.file, w.onnx_file)) / 1e6
    assert f"at most the CIFAR-10 models' {megabytes:.0f} MB for their default tags" in " ".join(README.split())


def test_the_one_liner_s_comment_is_what_it_computes():
    line = next(line for line in README.splitlines() if line.startswith("probabilities = model(transform("))
    name, stated = re.search(r"# (\S+) ([\d.]+), as `zoo predict` says", line).groups()
    model, transform = zoo.create_model("cnn_20k", pretrained=True), zoo.transforms("cnn_20k")
    with torch.no_grad():
        probabilities = model(transform(str(REPO / "examples" / "3-dress.png"))[None]).softmax(1)[0]
    top = int(probabilities.argmax())
    assert model.pretrained_cfg["classes"][top] == name and f"{float(probabilities[top]):.3f}" == stated


def test_the_experiments_training_time_is_the_records_sum():
    """README's "about N hours" for `zoo experiment all --train` from scratch is the sum of the committed runs'
    training times (a run that two experiments share counts once). An experiment still training has no table
    in docs/experiments yet, and its runs count once it is published."""
    docs = REPO / "docs" / "experiments"
    published = [e for e in experiments.EXPERIMENTS.values() if (docs / f"{e.name}.md").is_file()]
    folders = {v.seeded(s).run_dir(docs / "runs") for e in published for v in e.variants for s in e.seeds}
    seconds = sum(json.loads((folder / "report.json").read_text())["train_seconds"] for folder in folders)
    assert f"add up to about {round(seconds / 3600)} hours of 2-core CPU" in " ".join(README.split())


def validation_means(experiment: str) -> list[str]:
    """The mean validation accuracy of each variant in an experiment's committed table, as printed."""
    written = (REPO / "docs" / "experiments" / f"{experiment}.md").read_text()
    (table,) = [t for t in tables(written) if "variant" in t[0]]
    header, rows = table[0], table[1:]
    return [row[header.index("val acc.")].strip("*").split(" ±")[0] for row in rows]


def test_the_cnn_erasing_figures_are_the_experiment_s():
    """The README's sentence on random erasing for cnn_100k quotes `zoo experiment cnn-erasing`'s validation means."""
    means = validation_means("cnn-erasing")
    flat = " ".join(README.split())
    sentence = flat[flat.index("`zoo experiment cnn-erasing`") :].split(" - ")[0]
    assert f"three seeds' mean validation from {means[0]} to {means[1]}" in sentence


def test_the_ensemble_teacher_figures_are_the_experiment_s():
    """The README's sentence on the ensemble teacher quotes `zoo experiment cnn-ensemble-teacher`'s validation
    means (taught, then erasing) and calls them what they are."""
    _, erasing, taught = validation_means("cnn-ensemble-teacher")
    flat = " ".join(README.split())
    sentence = flat[flat.index("`zoo experiment cnn-ensemble-teacher`") :].split(" - ")[0]
    gain = float(taught.rstrip("%")) - float(erasing.rstrip("%"))
    verdict = "a tie" if abs(gain) < 0.005 else ("better" if gain > 0 else "worse")
    assert f"mean validation is {taught}, against {erasing} with erasing, {verdict}" in sentence


def test_the_mlp_schedule_figures_are_the_experiment_s():
    """The README's sentences on the MLPs' schedules quote `zoo experiment fcn-schedule`'s and `fcn-long`'s
    validation means."""
    means = validation_means("fcn-schedule")
    flat = " ".join(README.split())  # the README wraps its prose anywhere
    sentence = flat[flat.index("A longer schedule does more") :].split(" - ")[0]
    assert (
        f"from {means[0]} to {means[1]} mean validation at 300 epochs ({means[2]} with a weight EMA as well) and to {means[3]} at 600"
        in sentence
    )
    wide = validation_means("fcn-long")
    assert f"takes `fcn_100k` from {wide[0]} to {wide[1]} and `fcn_200k` from {wide[2]} to {wide[3]} mean" in sentence


def test_the_gpu_figures_are_the_records_():
    """The GPU section's search table and sentences quote the committed run records, and its benchmark block
    is `benchmarks/results-h200.txt`."""
    section = README[README.index("### On a GPU (one NVIDIA H200)") : README.index("## The studies' networks")]
    prose = " ".join(section.split())
    search = REPO / "docs" / "runs" / "cifar_cnn_best" / "h200-search"
    (table,) = [t for t in tables(section) if t[0][0] == "run"]
    header, rows = table[0], table[1:]
    loss = "validation loss, last epoch"
    column = {name: header.index(name) for name in ("epochs", "erasing", "validation", loss, "test", "training time")}
    for row in rows:
        run = RunDir(search / row[0].strip("`"))
        report, recipe = run.report(), run.config()["recipe"]
        assert row[column["epochs"]] == str(recipe["epochs"]) and float(row[column["erasing"]]) == recipe["erasing"]
        assert row[1 + column["epochs"]] == f"±{recipe['crop_padding']}"
        assert row[column["validation"]].strip("*") == f"{report['val_accuracy']:.2%}"
        assert row[column[loss]].strip("*") == f"{run.metrics()[-1]['val_loss']:.3f}"
        assert row[column["test"]] == f"{report['test_accuracy']:.2%}"
        assert row[column["training time"]] == f"{report['train_seconds']:.1f} s"
    chosen = max(rows, key=lambda row: percent(row[column["validation"]].strip("*")))
    assert chosen[column["validation"]].startswith("**"), "the bold accuracy is validation accuracy's pick"
    lowest = min(rows, key=lambda row: float(row[column[loss]].strip("*")))
    assert lowest[column[loss]].startswith("**") and lowest[0] == "`e60c4x5`", "the bold loss is v4's pick"
    seeds = [RunDir(search / name).metrics()[-1] for name in ("e60", "e60-seed1", "e60-seed2")]
    losses = " / ".join(f"{seed['val_loss']:.3f}" for seed in seeds)
    assert f"the three `e60` seeds end at {losses}" in prose
    augmented = RunDir(search / "e60c4x5").metrics()[-1]["train_accuracy"]
    assert f"({augmented:.1%} of them right in its last epoch, against {seeds[0]['train_accuracy']:.2%} for `e60`)" in prose
    picked = [RunDir(search / name).report() for name in (chosen[0].strip("`"), "e60-seed1", "e60-seed2")]
    mean = statistics.fmean(r["test_accuracy"] for r in picked)
    assert f"a mean of {mean:.2%} over three seeds" in prose
    base = RunDir(search / "base").report()
    assert f"30 epochs in {base['train_seconds']:.1f} s ({base['images_per_second']:,.0f} images/s), " in prose
    assert f"{base['test_accuracy']:.2%} test" in prose
    resnet = RunDir(REPO / "docs" / "runs" / "resnet18_cifar" / "seed1").report()
    assert f"200 epochs in {resnet['train_seconds']:.0f} s alone (seed 1, {resnet['test_accuracy']:.2%} test)" in prose
    measured = (REPO / "benchmarks" / "results-h200.txt").read_text().split("machine:")[0]
    block = [line.strip() for line in section.splitlines()]
    assert all(line.strip() in block for line in measured.splitlines() if line.strip())


def test_the_cpu_search_figures_are_the_records_():
    """The bullet on the levers tried on the CPU quotes their run records and v2's seed 0, and its commands
    are the recipes those runs recorded."""
    bullet = README[README.index("- **Two more levers, tried on the CPU**") : README.index("- **`resnet18_cifar`**")]
    prose = " ".join(bullet.split())
    runs = REPO / "docs" / "runs" / "cifar_cnn_best"
    base, distilled, everything = (
        RunDir(runs / name) for name in ("v2/seed0", "cpu-search/distill-w05-seed0", "cpu-search/all50k-seed0")
    )
    v2 = AIRBENCH_RECIPE.to_dict()  # cifar_cnn_best.v2's recipe, the one these runs changed
    assert {
        **v2,
        "teacher": "resnet18_cifar.v1",
        "distill_weight": 0.5,
        "teacher_crops": False,
    } == distilled.config()["recipe"]
    assert {**v2, "val_size": 0} == everything.config()["recipe"]
    assert "--set teacher=resnet18_cifar.v1 --set distill_weight=0.5 --set teacher_crops=false" in prose
    today = re.search(r"on v2's recipe \(today's with `([^`]*)`\)", prose).group(1)
    fields = dict(field.split("=") for field in today.split("--set ")[1:])
    assert zoo.get_spec("cifar_cnn_best").recipe.replace(**{k: v.strip() for k, v in fields.items()}).to_dict() == v2
    without, taught, on_all = base.report(), distilled.report(), everything.report()
    assert f"{without['val_accuracy']:.2%} validation, {without['test_accuracy']:.2%} test" in prose
    assert (
        f"reached {taught['val_accuracy']:.2%} validation and {taught['test_accuracy']:.2%} test in {taught['train_seconds']:,.0f} s"
        in prose
    )
    gain = 100 * (on_all["test_accuracy"] - without["test_accuracy"])
    assert f"reached {on_all['test_accuracy']:.2%} test in {on_all['train_seconds']:,.0f} s, {gain:+.2f} over" in prose
    assert everything.config()["train_images"] == 50_000 and on_all["val_accuracy"] is None


def test_the_resnet_figures_are_the_records_():
    """The resnet18_cifar bullet quotes its run records and the manifest."""
    bullet = README[
        README.index("- **`resnet18_cifar`** (`resnet18_cifar.v1`)") : README.index("- Training on the canonical set")
    ]
    prose = " ".join(bullet.replace("**", "").split())
    (study,) = collect(["resnet18_cifar"], REPO / "docs" / "runs")
    assert study.seeds == [0, 1]
    seed1 = RunDir(REPO / "docs" / "runs" / "resnet18_cifar" / "seed1").report()  # images/s: not in the study
    assert f"seed 0 in {study.train_seconds[0]:.0f} s" in prose
    assert f"seed 1 alone in {study.train_seconds[1]:.0f} s at {seed1['images_per_second']:,.0f} images/s" in prose
    assert "Test " + " / ".join(f"{accuracy:.2%}" for accuracy in study.test_accuracies) in prose
    assert f"mean {study.mean:.2%} ± {study.std:.2%}" in prose
    assert f"the better on validation ({max(study.val_accuracies):.2%})" in prose
    shipped = shipped_weights("resnet18_cifar").metrics["test_accuracy"]
    best_cnn = shipped_weights("cifar_cnn_best").metrics["test_accuracy"]
    assert f"at {shipped:.2%} as stored, {100 * (shipped - best_cnn):+.2f} over `cifar_cnn_best`" in prose


def test_the_cifar_cnn_best_figures_are_the_records_():
    """The cifar_cnn_best bullet quotes its three seeds' records, the shipping rule's seed and the manifest, v3's
    records beside them, and its time per run is the median epoch of seed 0 times 60."""
    bullet = README[README.index("- **`cifar_cnn_best`** (`cifar_cnn_best.v4`)") : README.index("- **Two more levers")]
    prose = " ".join(bullet.replace("**", "").split())
    runs = REPO / "docs" / "runs" / "cifar_cnn_best"
    (study,) = collect(["cifar_cnn_best"], REPO / "docs" / "runs")
    assert study.seeds == [0, 1, 2] and study.val_accuracies == [None, None, None] and study.best_seed == 0
    assert study.recipe == zoo.get_spec("cifar_cnn_best").recipe.to_dict()  # `zoo train cifar_cnn_best` reproduces it
    assert "test " + " / ".join(f"{accuracy:.2%}" for accuracy in study.test_accuracies) in prose
    assert f"mean {study.mean:.2%} ± {study.std:.2%}, in " + ", ".join(f"{t:,.0f} s" for t in study.train_seconds) in prose
    shipped = shipped_weights("cifar_cnn_best")
    assert (shipped.tag, shipped.seed, shipped.metrics["test_accuracy"]) == ("v4", 0, study.shipped_accuracy)
    v3 = [RunDir(runs / "v3" / f"seed{k}").report()["test_accuracy"] for k in range(3)]
    assert v3[0] == shipped_weights("cifar_cnn_best", "v3").metrics["test_accuracy"]
    assert "test " + " / ".join(f"{accuracy:.2%}" for accuracy in v3) in prose
    assert f"mean {statistics.fmean(v3):.2%} ± {statistics.stdev(v3):.2%}, seed 0 shipped at {v3[0]:.2%}" in prose
    assert f"ships seed 0 (`zoo train`'s default): {study.shipped_accuracy:.2%}, " in prose
    assert f"{100 * (study.shipped_accuracy - v3[0]):+.2f} over `cifar_cnn_best.v3`" in prose
    assert f"{100 * (study.shipped_accuracy - 0.92):.2f} over the 92.0% floor" in prose
    epochs = RunDir(runs / "seed0").metrics()
    median = statistics.median(epoch["seconds"] for epoch in epochs)
    rate = statistics.median(epoch["images_per_second"] for epoch in epochs)
    assert f"median epoch took {median:.1f} s on both cores of this Xeon ({rate:,.0f} images/s)" in prose
    assert f"60 epochs in about {median * len(epochs) / 60:.0f} minutes, inside the hour" in prose
    for seed in study.seeds:  # a run slowed by other work on its cores says by how much
        seconds = [epoch["seconds"] for epoch in RunDir(runs / f"seed{seed}").metrics()]
        excess = sum(seconds) - len(seconds) * statistics.median(seconds)
        assert (f"seed {seed}'s include about {excess / 60:.0f} minutes" in prose) == (excess > 120)
    before = RunDir(runs / "v3" / "seed0").metrics()[-1]["train_accuracy"]
    assert f"classified {epochs[-1]['train_accuracy']:.1%} of its" in prose and f"seed 0 reached {before:.2%}" in prose
