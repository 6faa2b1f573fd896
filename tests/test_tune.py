"""zoo tune: a real Ray Tune sweep (embedded Ray, 2 CPUs) over real Fashion-MNIST runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import zoo
from zoo.core.errors import ZooError
from zoo.core.registry import get_spec

ray = pytest.importorskip("ray", reason="zoo tune needs the [tune] extra (Ray Tune)")

from zoo.tune import arch_for, budget_check, load_space, parse_resources, spec_widths, tune_model  # noqa: E402

# 60-60 (51,530 parameters) is over fcn_50k's budget and must never train; 54-54-54 is the registry's.
SPACE = {
    "lr": {"loguniform": [0.03, 0.3]},
    "distill_weight": 0.0,
    "widths": {"choice": [[54, 54, 54], [60, 60], [52, 52, 52, 52]]},
}


def test_a_real_sweep_ranks_ordinary_runs_and_resumes(data_dir: Path, tmp_path: Path) -> None:
    options = dict(samples=4, space=SPACE, max_epochs=3, limit_train=2000, data_dir=data_dir, out=tmp_path, seed=1)
    result = tune_model("fcn_50k", **options)

    assert len(result.trials) == 4
    # Ranked: trials that trained the whole schedule first (the winner is one), each group by validation.
    ranks = [(not t.completed, -t.val_accuracy) for t in result.trials]
    assert ranks == sorted(ranks) and result.best.completed and result.best.epochs_run == 3
    assert all(t.completed == (t.epochs_run == 3) for t in result.trials)
    assert result.best.val_accuracy > 0.5  # 3 epochs on 2,000 images: far above chance (0.1)
    for trial in result.trials:
        run = Path(trial.run_dir)
        # An ordinary run folder: the engine's config, per-epoch metrics and a resumable checkpoint.
        assert {"config.json", "metrics.jsonl", "last.safetensors", "best.safetensors"} <= {
            p.name for p in run.iterdir()
        }
        config = json.loads((run / "config.json").read_text())
        assert config["train_images"] == 2000 and config["recipe"]["epochs"] == 3
        assert config["recipe"]["lr"] == pytest.approx(trial.settings["lr"])
        assert trial.settings["widths"] != [60, 60]  # filtered out before any trial was sampled
        assert 45_000 <= trial.params <= 50_000
        assert 1 <= trial.epochs_run <= 3
        if (run / "report.json").is_file():  # trained to the end: the test set was never looked at
            assert json.loads((run / "report.json").read_text())["test_accuracy"] is None

    best = result.best
    assert result.overrides["lr"] == pytest.approx(best.settings["lr"], rel=1e-2)
    assert result.overrides["epochs"] == 3 and result.overrides["distill_weight"] == 0.0
    get_spec("fcn_50k").recipe.replace(**result.overrides)  # the --set line is a valid recipe
    assert all(f"--set {k}={v}" in result.confirm_command() for k, v in result.overrides.items())
    assert result.architecture == (None if best.settings["widths"] == [54, 54, 54] else best.settings["widths"])
    assert Path(result.plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The ranked table fits an 80-column terminal.
    from rich.console import Console

    from zoo.cli.tune import tune_table

    console = Console(width=80, record=True)
    console.print(tune_table(result, 80))
    text = console.export_text()
    # Headers name the settings ("learning rate", which may wrap onto two lines), not the recipe's field names.
    assert max(map(len, text.splitlines())) <= 80 and "widths" in text
    assert all(word in text for word in "learning rate".split()) and " lr " not in text

    # Run again: Ray Tune restores the finished sweep, and no trial trains again.
    lines = {t.trial_id: (Path(t.run_dir) / "metrics.jsonl").read_text() for t in result.trials}
    again = tune_model("fcn_50k", **options)
    assert [t.trial_id for t in again.trials] == [t.trial_id for t in result.trials]
    assert {t.trial_id: (Path(t.run_dir) / "metrics.jsonl").read_text() for t in again.trials} == lines
    # The same sweep name with other settings is refused rather than silently resumed.
    with pytest.raises(ZooError, match="other settings"):
        tune_model("fcn_50k", **{**options, "samples": 5})


def test_max_concurrent_runs_trials_one_after_another(data_dir: Path, tmp_path: Path) -> None:
    # 2 CPUs fit two 1-CPU trials at once; a cap of one (a machine shared with other work) must serialise them.
    result = tune_model("fcn_50k", samples=2, space={"lr": {"choice": [0.05, 0.1]}, "distill_weight": 0.0},
                        max_epochs=1, limit_train=500, data_dir=data_dir, out=tmp_path, max_concurrent=1)  # fmt: skip
    assert len(result.trials) == 2 and all(t.completed for t in result.trials)
    # trial.json is written as a trial starts, metrics.jsonl at the end of its (only) epoch.
    spans = sorted(
        ((Path(t.run_dir) / "trial.json").stat().st_mtime, (Path(t.run_dir) / "metrics.jsonl").stat().st_mtime)
        for t in result.trials
    )
    assert spans[0][1] <= spans[1][0]  # the second trial started after the first had finished
    with pytest.raises(ZooError, match="max_concurrent must be at least 1"):
        tune_model("fcn_50k", max_concurrent=0, out=tmp_path)


def test_candidates_are_held_to_the_budget() -> None:
    spec = get_spec("cnn_10k")
    assert budget_check(spec, arch_for(spec, spec_widths(spec))) == spec.params  # the registry's own
    assert budget_check(spec) == spec.params
    assert budget_check(spec, arch_for(spec, [8, 12, 16, 20, 20])) == 9_506  # another plan within the range
    with pytest.raises(ZooError, match="outside cnn_10k's range"):
        budget_check(spec, arch_for(spec, [16, 24, 32, 32, 32]))
    with pytest.raises(ZooError, match="5 convolutions"):
        arch_for(spec, [8, 16])
    with pytest.raises(ZooError, match="takes no widths"):
        arch_for(get_spec("resnet18_cifar"), [64, 128, 256])
    # Widths reach the builder as an architecture argument, as create_model passes them (timm style).
    assert zoo.create_model("cnn_10k", widths=(8, 12, 16, 20, 20)).network[2][0].out_channels == 12
    with pytest.raises(ZooError, match="none of the widths candidates fits"):
        load_space({"widths": {"choice": [[300, 300]]}}, get_spec("fcn_50k"))
    assert load_space(SPACE, get_spec("fcn_50k"))["widths"] == {"choice": [[54, 54, 54], [52, 52, 52, 52]]}


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"learning_rate": 0.1}, "unknown search-space key 'learning_rate'"),
        ({"seed": {"choice": [0, 1]}}, "seed is fixed"),
        ({"epochs": {"choice": [10, 20]}}, "--max-epochs"),
        ({"lr": {"gaussian": [0.1, 0.01]}}, "expected one of uniform, loguniform, choice, randint"),
    ],
)
def test_bad_search_spaces_are_one_line_errors(space: dict, message: str) -> None:
    with pytest.raises(ZooError, match=message):
        load_space(space, get_spec("fcn_50k"))


def test_resources_per_trial() -> None:
    assert parse_resources("cpu=1,gpu=0.25") == {"cpu": 1.0, "gpu": 0.25}
    assert parse_resources("gpu=0.5") == {"cpu": 1.0, "gpu": 0.5}
    for bad in ("cpu=two", "tpu=1", "cpu"):
        with pytest.raises(ZooError, match=f"expects cpu=N,gpu=F .*, got '{bad}'"):
            parse_resources(bad)
    with pytest.raises(ZooError, match="needs at least some cpu"):
        parse_resources("cpu=0")


def test_cli_errors_and_the_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from zoo.cli import main

    space = tmp_path / "space.json"
    space.write_text("{not json")
    assert main(["tune", "fcn_50k", "--space", str(space)]) != 0
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "is not a JSON search space" in error and "\n" not in error
    assert main(["tune", "fcn_50k", "--space", str(tmp_path / "missing.json")]) != 0
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "not found" in error and "\n" not in error
    assert main(["study", "fcn_50k", "--set", "lr=0.05"]) != 0
    assert "--train" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the [tune] extra were not installed
    assert main(["tune", "fcn_50k"]) != 0
    assert 'pip install -e ".[tune]"' in capsys.readouterr().err


@pytest.fixture
def token_server():
    """A gRPC server that, like a Ray cluster with token authentication, refuses calls without its token."""
    grpc = pytest.importorskip("grpc")
    from concurrent import futures

    class Guard(grpc.GenericRpcHandler):
        def service(self, details):
            def answer(request, context):
                if dict(context.invocation_metadata()).get("authorization") != "Bearer good-token":
                    context.abort(grpc.StatusCode.UNAUTHENTICATED, "Invalid or missing authentication token")
                return b""

            return grpc.unary_unary_rpc_method_handler(answer)

    server = grpc.server(futures.ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers([Guard()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(None)


def test_joining_a_cluster_says_what_to_set(token_server: int, tmp_path: Path, monkeypatch, capsys) -> None:
    """The README's cluster path as a new user meets it: each failure is one line that says what to do."""
    from zoo.cli import main
    from zoo.core.ray_cluster import check_address

    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "no-token"))
    for address in (f"127.0.0.1:{token_server}", f"ray://127.0.0.1:{token_server}"):
        with pytest.raises(ZooError, match="requires its authentication token: set RAY_AUTH_MODE=token"):
            check_address(address, "tune")
    assert main(["tune", "fcn_50k", "--address", f"127.0.0.1:{token_server}"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "set RAY_AUTH_MODE=token" in error and "~/.ray/auth_token" in error
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    with pytest.raises(ZooError, match="no token was found"):
        check_address(f"127.0.0.1:{token_server}", "tune")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "bad-token")
    with pytest.raises(ZooError, match="refuses this token"):
        check_address(f"127.0.0.1:{token_server}", "tune")
    (tmp_path / "token").write_text("good-token\n")
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "token"))
    check_address(f"ray://127.0.0.1:{token_server}", "tune")  # the token is read where Ray reads it
    with pytest.raises(ZooError, match="cannot reach the Ray cluster at 127.0.0.1:1"):
        check_address("127.0.0.1:1", "tune")
    monkeypatch.setitem(sys.modules, "grpc", None)  # as if ray[client] were not installed
    with pytest.raises(ZooError, match=r'ray://.* needs ray\[client\] here: .*"zoo-classifiers\[tune\]"'):
        check_address(f"ray://127.0.0.1:{token_server}", "tune")
