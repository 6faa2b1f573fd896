"""Data-parallel training under torchrun: two gloo processes on the CPU train one model together.

The launch is real (`python -m torch.distributed.run`, the module behind `torchrun`), on a small
Fashion-MNIST subset with one torch thread per process, so it runs on a 2-core CI machine in well under
a minute. The GPU tests run the same engine on CUDA and are skipped without one.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zoo
from zoo.core.checkpoint import read_checkpoint

RUN_FILES = {"config.json", "metrics.jsonl", "best.safetensors", "last.safetensors", "report.json"}
SMALL = ["--limit-train", "2000", "--set", "val_size=500", "--batch-size", "128"]


def torchrun(args: list[str], log_dir: Path, nproc: int = 2, device: str = "cpu", timeout: float = 120):
    """Run `zoo train ARGS` under torchrun with NPROC workers; each worker's output goes to LOG_DIR."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", ZOO_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("ZOO_DEBUG", None)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
        "--log-dir", str(log_dir), "--redirects", "3",
        "-m", "zoo.cli", "train", *args, "--device", device,
    ]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def worker_logs(log_dir: Path) -> dict[int, str]:
    """Local rank -> that worker's stdout and stderr, from torchrun's --log-dir (…/attempt_0/RANK/*.log)."""
    logs: dict[int, str] = {}
    for path in sorted(log_dir.rglob("std*.log")):
        logs[int(path.parent.name)] = logs.get(int(path.parent.name), "") + path.read_text()
    return logs


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, data_dir):
    """One epoch with two processes, then resumed to two epochs, also with two processes."""
    base = tmp_path_factory.mktemp("ddp")
    run = base / "run"
    first = torchrun(["fcn_50k", "--epochs", "1", "--out", str(run), "--data-dir", str(data_dir), *SMALL], base / "l1")
    assert first.returncode == 0, first.stdout + first.stderr + str(worker_logs(base / "l1"))
    after_first = {"records": records(run), "report": json.loads((run / "report.json").read_text())}
    second = torchrun(
        ["fcn_50k", "--epochs", "2", "--resume", str(run), "--extend", "--data-dir", str(data_dir), *SMALL], base / "l2"
    )
    assert second.returncode == 0, second.stdout + second.stderr + str(worker_logs(base / "l2"))
    return run, after_first, worker_logs(base / "l1"), worker_logs(base / "l2")


def test_both_ranks_finish_and_only_rank_0_reports(ddp_run):
    _, _, first_logs, second_logs = ddp_run
    for logs in (first_logs, second_logs):
        assert sorted(logs) == [0, 1]
        assert all("Traceback" not in text and "error:" not in text for text in logs.values()), logs
        assert "training report" in logs[0] and "training fcn_50k on 2 × cpu (gloo)" in logs[0]
        assert logs[1].strip() == "", logs[1]  # rank 1 trains silently


def test_one_set_of_run_files_with_one_line_per_epoch(ddp_run):
    run, after_first, _, _ = ddp_run
    assert {p.name for p in run.iterdir()} == RUN_FILES  # no second set, no temporary files left behind
    assert [r["epoch"] for r in after_first["records"]] == [1]
    assert [r["epoch"] for r in records(run)] == [1, 2]  # the resumed run appended epoch 2 only
    config = json.loads((run / "config.json").read_text())
    assert config["distributed"] == {
        "world_size": 2, "backend": "gloo", "global_batch_size": 128, "batch_size_per_rank": 64,
    }  # fmt: skip
    assert config["train_images"] == 2000 and config["recipe"]["epochs"] == 2
    report = json.loads((run / "report.json").read_text())
    assert report["world_size"] == 2 and report["epochs"] == 2 and report["images_per_second"] > 0


def test_metrics_are_reduced_over_both_ranks_and_time_accumulates(ddp_run):
    run, after_first, _, _ = ddp_run
    first, second = records(run)
    assert first == after_first["records"][0]
    assert first["world_size"] == second["world_size"] == 2
    # Hits are summed over both shards and divided by all 2000 images: one rank's alone could not pass 0.5.
    assert 0.5 < second["train_accuracy"] <= 1
    assert second["train_loss"] < first["train_loss"]
    # Each figure is rounded to the millisecond on its own, so their sum may be one millisecond off.
    assert second["elapsed_seconds"] == pytest.approx(first["elapsed_seconds"] + second["seconds"], abs=1.5e-3)
    report = json.loads((run / "report.json").read_text())
    best = max((first, second), key=lambda r: r["val_accuracy"])
    assert report["best_epoch"] == best["epoch"] and report["val_accuracy"] == best["val_accuracy"]
    assert report["time_to_best_seconds"] == pytest.approx(best["elapsed_seconds"])


def test_checkpoints_hold_the_plain_model_and_evaluate_well_above_chance(ddp_run, data_dir):
    run, _, _, _ = ddp_run
    tensors, meta = read_checkpoint(run / "best.safetensors")
    assert not any(key.startswith("module.") for key in tensors)
    last, last_meta = read_checkpoint(run / "last.safetensors")
    assert last_meta["epoch"] == "2" and not any(key.startswith("model.module.") for key in last)
    model = zoo.create_model("fcn_50k", weights=run / "best.safetensors")  # strict load
    evaluation = zoo.evaluate(model, data_dir=data_dir)
    assert evaluation.accuracy > 0.5  # chance is 0.1
    assert evaluation.accuracy == pytest.approx(json.loads(meta["test_accuracy"]), abs=1e-6)


def test_single_process_context_is_a_no_op():
    from zoo.training.distributed import Distributed

    single = Distributed()
    assert not single.enabled and single.is_main and single.world_size == 1
    tensor = torch.ones(3)
    assert single.all_reduce_sum(tensor) is tensor and torch.equal(tensor, torch.ones(3))
    assert single.broadcast({"a": 1}) == {"a": 1}
    single.barrier()
    single.close()


def test_derived_seeds_share_the_shuffle_and_split_the_augmentation():
    from zoo.training.distributed import derived_seed

    assert derived_seed(0, "shuffle", 1) == derived_seed(0, "shuffle", 1)
    assert derived_seed(0, "shuffle", 1) != derived_seed(0, "shuffle", 2)
    assert derived_seed(0, "augment", 1, 0) != derived_seed(0, "augment", 1, 1)
    assert 0 <= derived_seed(7, "augment", 3, 1) < 2**63


# --- on a CUDA GPU ---------------------------------------------------------------------------------


@pytest.mark.gpu
def test_cifar_cnn_best_learns_on_the_gpu(tmp_path, data_dir):
    result = zoo.train(
        "cifar_cnn_best", epochs=2, limit_train=10000, val_size=1000, compile=False, device="cuda",
        out=tmp_path / "run", data_dir=data_dir, progress=False,
    )  # fmt: skip
    first, second = records(tmp_path / "run")
    assert first["train_loss"] < math.log(10)  # the loss of a guess
    assert second["train_loss"] < first["train_loss"]
    assert result.val_accuracy > 0.3 and result.test_accuracy > 0.3  # chance is 0.1
    assert result.images_per_second > 0 and result.time_to_best_seconds > 0


@pytest.mark.gpu
def test_torchrun_on_gpus_uses_nccl(tmp_path, data_dir):
    nproc = min(2, torch.cuda.device_count())
    run = tmp_path / "run"
    args = ["cifar_cnn_best", "--epochs", "1", "--out", str(run), "--data-dir", str(data_dir), "--no-compile"]
    done = torchrun([*args, *SMALL], tmp_path / "logs", nproc=nproc, device="cuda", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr + str(worker_logs(tmp_path / "logs"))
    assert json.loads((run / "config.json").read_text())["distributed"]["backend"] == "nccl"
    zoo.create_model("cifar_cnn_best", weights=run / "best.safetensors")
