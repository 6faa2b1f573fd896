"""Prediction at any scale: lazy inputs, decoding on every core with bounded work in flight, rows written as
they come, resuming a stopped run, and scoring a folder of labelled photos. The model is a shipped one with
its ONNX file, so nothing here needs torch or an export."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text

from zoo.cli import main
from zoo.core.datasets import FASHION_MNIST_CLASSES
from zoo.core.decode_pool import IN_FLIGHT_PER_PROCESS
from zoo.core.errors import ZooError
from zoo.core.inputs import class_key, folder_images, image_folder, iter_inputs, list_file_inputs
from zoo.core.results_file import csv_columns
from zoo.prediction import evaluate_images, iter_predictions, predict, write_predictions

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MODEL = "cnn_20k"
CLASS_OF = {p.name: p.stem.split("-", 1)[1] for p in EXAMPLES.glob("*.png")}  # 3-dress.png -> dress


@pytest.fixture
def many(tmp_path: Path) -> list[Path]:
    """120 image files: the ten examples under twelve names each (hard links, as a big folder holds)."""
    folder = tmp_path / "many"
    folder.mkdir()
    for copy in range(12):
        for example in sorted(EXAMPLES.glob("*.png")):
            os.link(example, folder / f"{copy:02d}-{example.name}")
    return sorted(folder.iterdir())


def rows_of(predictions) -> list[dict]:
    return [p.to_dict() for p in predictions]


def test_folders_are_listed_sorted_hidden_skipped_and_recursion_on_request(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    for name in ("b/2.png", "b/1.JPG", "a/deep/x.webp", "a/0.gif", "z.png", ".hidden.png", "._z.png", "notes.txt", ".git/h.png"):  # fmt: skip
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)  # a link to a folder is not followed
    top = str(tmp_path)
    assert list(folder_images(top)) == [f"{top}/z.png"]
    assert list(folder_images(top, recursive=True)) == [
        f"{top}/a/0.gif", f"{top}/a/deep/x.webp", f"{top}/b/1.JPG", f"{top}/b/2.png", f"{top}/z.png",
    ]  # fmt: skip


def test_each_input_names_its_own_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "classes" / "cat").mkdir(parents=True)
    (tmp_path / "classes" / "cat" / "1.png").write_bytes(b"")
    found = list(iter_inputs([tmp_path / "missing.png", tmp_path / "classes", str(tmp_path / "none*.png")]))
    assert [f.error.split(";")[0] for f in found] == [
        "no such file or directory", "folder has no images (.png, .jpg, .jpeg, .bmp, .webp, .gif)",
        "no file matches this pattern",
    ]  # fmt: skip
    assert "--recursive" in found[1].error
    assert [f.label for f in iter_inputs([tmp_path / "classes"], recursive=True)] == [f"{tmp_path}/classes/cat/1.png"]
    listing = tmp_path / "list.txt"
    listing.write_text("a.png\n\nb dir/c.png\r\n")
    assert [f.label for f in list_file_inputs(str(listing))] == ["a.png", "b dir/c.png"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("x.png\ny.jpg\n"))
    assert [f.label for f in list_file_inputs("-")] == ["x.png", "y.jpg"]
    with pytest.raises(ZooError, match="cannot read the list file"):
        list(list_file_inputs(str(tmp_path / "nope.txt")))


def test_the_stream_is_predict_in_order_across_many_batches_and_processes(many: list[Path]) -> None:
    expected = rows_of(predict([str(p) for p in many], model=MODEL))  # one call, decoded in this process
    streamed = rows_of(iter_predictions(str(many[0].parent), model=MODEL, batch_size=8, workers=2))
    assert streamed == expected and len(streamed) == 120
    assert all(class_key(row["top"][0]["class"]) in class_key(Path(row["file"]).name) for row in streamed)


def test_work_in_flight_is_bounded_by_the_batch_and_the_pool(many: list[Path]) -> None:
    """The first prediction comes before the inputs are all read: at most the batches in flight are."""
    pulled = 0

    def names():
        nonlocal pulled
        for _ in range(100):  # 12,000 inputs, read only as they are needed
            for path in many:
                pulled += 1
                yield str(path)

    stream = iter_predictions(names(), model=MODEL, batch_size=8, workers=2)
    assert next(stream).error is None
    assert pulled <= 8 * (IN_FLIGHT_PER_PROCESS * 2 + 2) + 1
    stream.close()  # stops the decoding processes


def test_files_that_cannot_be_read_fail_alone_in_their_place(many: list[Path], tmp_path: Path) -> None:
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "cut.png").write_bytes(many[0].read_bytes()[:60])
    inputs = [str(p) for p in many[:30]] + [str(tmp_path / "text.png"), str(tmp_path / "cut.png"), "gone.png"]
    inputs += [str(p) for p in many[30:]]
    rows = rows_of(iter_predictions(inputs, model=MODEL, batch_size=8, workers=2))
    assert [r["file"] for r in rows] == inputs
    assert [bool(r.get("error")) for r in rows] == [False] * 30 + [True] * 3 + [False] * 90
    assert "not a recognised image" in rows[30]["error"] and "truncated" in rows[31]["error"]
    assert rows[32]["error"] == "no such file or directory"


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_stopped_run_resumes_without_repeating_or_losing_a_file(many: list[Path], tmp_path: Path, fmt: str) -> None:
    odd = tmp_path / 'odd, "name"\nwith a newline.png'  # CSV quotes it over two lines
    os.link(many[0], odd)
    inputs = [str(p) for p in many[:50]] + [str(odd)] + [str(p) for p in many[50:]]
    whole = tmp_path / f"whole.{fmt}"
    summary = write_predictions(inputs, whole, model=MODEL, batch_size=16, workers=2)
    assert (summary.predicted, summary.failed, summary.resumed) == (121, 0, 0)
    text = whole.read_text()
    for cut in (0.25, 0.45, 0.9):  # anywhere, in a row or between two: whole rows are kept, the rest redone
        stopped = tmp_path / f"stopped-{cut}.{fmt}"
        stopped.write_text(text[: int(len(text) * cut)])
        again = write_predictions(inputs, stopped, resume=True, model=MODEL, batch_size=16, workers=2)
        assert stopped.read_text() == text
        assert again.resumed + again.predicted == 121 and again.resumed > 0
    if fmt == "csv":
        assert text.splitlines()[0] == ",".join(csv_columns(5))


def test_a_results_file_is_resumed_only_by_the_run_that_wrote_it(many: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    inputs = [str(p) for p in many[:20]]
    write_predictions(inputs, out, model=MODEL)
    with pytest.raises(ZooError, match="exists; pass"):
        write_predictions(inputs, out, model=MODEL)
    with pytest.raises(ZooError, match="row 1 is .*, but input 1 is"):
        write_predictions(inputs[::-1], out, resume=True, model=MODEL)
    with pytest.raises(ZooError, match="more rows than there are inputs"):
        write_predictions(inputs[:5], out, resume=True, model=MODEL)
    out.write_text("".join(out.read_text().splitlines(keepends=True)[:10]))
    with pytest.raises(ZooError, match="holds predictions of cnn_20k, not cnn_10k"):
        write_predictions(inputs, out, resume=True, model="cnn_10k")
    table = tmp_path / "rows.csv"
    write_predictions(inputs, table, model=MODEL, topk=3)
    with pytest.raises(ZooError, match="does not start with the CSV header of topk=5"):
        write_predictions(inputs, table, model=MODEL, topk=5, resume=True)
    assert write_predictions(inputs, table, model=MODEL, topk=3, resume=True).resumed == 20


def test_cli_writes_rows_as_they_come_with_a_summary_on_stderr(capsys, many: list[Path], tmp_path: Path) -> None:
    folder = str(many[0].parent)
    (tmp_path / "many" / "zz-broken.png").write_text("no")
    assert main(["predict", folder, "--model", MODEL, "--json", "--batch-size", "16"]) == 1
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert len(rows) == 121 and rows[-1]["file"].endswith("zz-broken.png") and "error" in rows[-1]
    assert captured.err.strip().splitlines() == [captured.err.strip()]  # no bar in a pipe: the summary line alone
    assert captured.err.startswith("121 inputs: 120 classified, 1 could not be read (their rows say why); ")
    assert main(["predict", folder, "--model", MODEL, "--csv", "--topk", "2"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "file,model,backend,class_1,probability_1,class_2,probability_2,error" and len(lines) == 122


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--json", "--csv"], "--json and --csv: choose one"),
        (["--resume"], "--resume continues a results file: give it with --out FILE"),
        (["--address", "127.0.0.1:1"], "--address is the Ray cluster of --ray: pass --ray too"),
        (["-", "--files-from", "list.txt"], "give - or --files-from, not both"),
    ],
)
def test_cli_option_errors_are_one_line(capsys, argv: list[str], message: str) -> None:
    assert main(["predict", str(EXAMPLES), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == f"error: {message}\n"


def test_cli_reads_file_names_from_stdin_and_searches_subfolders(capsys, monkeypatch, tmp_path: Path) -> None:
    for example in EXAMPLES.glob("*.png"):
        (tmp_path / "photos" / CLASS_OF[example.name]).mkdir(parents=True, exist_ok=True)
        os.link(example, tmp_path / "photos" / CLASS_OF[example.name] / example.name)
    assert main(["predict", str(tmp_path / "photos"), "--model", MODEL, "--json"]) == 1
    assert "--recursive" in json.loads(capsys.readouterr().out)["error"]
    assert main(["predict", str(tmp_path / "photos"), "-r", "--model", MODEL, "--json", "--topk", "1"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 10 and rows[0]["file"].endswith("/ankle-boot/9-ankle-boot.png")
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(f"{r['file']}\n" for r in rows)))
    assert main(["predict", "-", "--model", MODEL, "--json", "--topk", "1"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == rows


def test_a_progress_bar_shows_on_a_terminal_within_80_columns(monkeypatch, many: list[Path], tmp_path: Path) -> None:
    import zoo.cli.predict as command

    terminal = Console(file=io.StringIO(), force_terminal=True, width=80, highlight=False)
    monkeypatch.setattr(command, "err", terminal)
    out = tmp_path / "rows.jsonl"
    assert main(["predict", str(many[0].parent), "--model", MODEL, "--out", str(out), "--batch-size", "4"]) == 0
    shown = Text.from_ansi(terminal.file.getvalue().replace("\r", "\n")).plain
    assert "predicting" in shown and "images/s" in shown and "120 inputs: 120 classified" in shown
    assert max(map(len, shown.split("\n"))) <= 80


def test_stop_with_ctrl_c_then_kill_9_then_resume_predicts_every_file_once(many: list[Path], tmp_path: Path) -> None:
    """The issue's check: SIGINT, then SIGKILL, in the middle of runs with --out, then --resume to the end.
    File names come on stdin, so each run is stopped at a known point, while it waits for more."""
    names = [str(p) for p in many] * 3  # 360 inputs (a name may come twice: it is predicted each time)
    out = tmp_path / "rows.jsonl"
    command = [
        sys.executable,
        "-m",
        "zoo.cli",
        "predict",
        "-",
        "--model",
        MODEL,
        "--out",
        str(out),
        "--batch-size",
        "8",
    ]

    def started(count: int, *extra: str) -> subprocess.Popen:
        run = subprocess.Popen([*command, *extra], stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        run.stdin.write("".join(f"{n}\n" for n in names[:count]))
        run.stdin.flush()
        deadline = time.monotonic() + 60
        # It then waits for more names, with all it could do written but the batches in flight.
        while (not out.exists() or out.read_text().count("\n") < count - 48) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        return run

    first = started(120)
    first.send_signal(signal.SIGINT)
    assert first.wait(30) == 130
    assert (
        first.stderr.read()
        == f"interrupted after {out.read_text().count(chr(10))} inputs; rerun with --resume to continue {out}\n"
    )
    assert 72 <= out.read_text().count("\n") < 120

    second = started(260, "--resume")
    workers = _children(second.pid)
    second.kill()  # SIGKILL: no handler runs, whatever was being written stays as it was
    second.wait(30)
    time.sleep(0.5)
    assert workers and not [pid for pid in workers if _alive(pid)]  # the decoding processes died with it

    third = subprocess.run(
        [*command, "--resume"], input="".join(f"{n}\n" for n in names), capture_output=True, text=True
    )
    assert third.returncode == 0, third.stderr
    assert "360 inputs: 360 classified" in third.stderr and "were done before this run" in third.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["file"] for r in rows] == names  # every input exactly once, in order
    clean = tmp_path / "clean.jsonl"
    write_predictions(names, clean, model=MODEL, batch_size=8)
    assert out.read_text() == clean.read_text()


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()  # a zombie has exited
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    """An ImageFolder of the examples under class folders named as people name them, and one mistake."""
    folders = {"T-shirt/top": "t_shirt-top", "Trouser": "TROUSER", "Ankle boot": "ankle boot"}
    for example in sorted(EXAMPLES.glob("*.png")):
        name = CLASS_OF[example.name].replace("-", " ").capitalize().replace("T shirt top", "T-shirt/top")
        folder = tmp_path / "photos" / folders.get(name, name.lower())
        folder.mkdir(parents=True, exist_ok=True)
        os.link(example, folder / example.name)
    os.link(EXAMPLES / "3-dress.png", tmp_path / "photos" / "TROUSER" / "really-a-dress.png")
    return tmp_path / "photos"


def test_folder_names_match_classes_without_case_or_punctuation(labelled: Path) -> None:
    assert class_key("T-shirt/top") == class_key("t_shirt-top") == "tshirttop"
    assert sorted(image_folder(labelled, list(FASHION_MNIST_CLASSES)).values()) == list(range(10))
    (labelled / "Hats").mkdir()
    with pytest.raises(ZooError, match="folder 'Hats' .* matches none of the model's classes"):
        image_folder(labelled, list(FASHION_MNIST_CLASSES))


def test_eval_scores_your_own_labelled_photos(capsys, labelled: Path) -> None:
    result = evaluate_images(labelled, MODEL, batch_size=4, workers=2)
    assert result.images == 11 and result.accuracy == pytest.approx(10 / 11, abs=1e-6)
    assert result.support["Trouser"] == 2 and result.per_class["Trouser"] == 0.5
    assert result.precision["Dress"] == 0.5 and result.confusion_matrix[1][3] == 1
    assert result.mistakes == [{"file": str(labelled / "TROUSER" / "really-a-dress.png"), "true": "Trouser",
                                "predicted": "Dress", "probability": result.mistakes[0]["probability"]}]  # fmt: skip
    assert main(["eval", MODEL, "--images", str(labelled), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == result.to_dict()
    assert main(["eval", MODEL, "--images", str(labelled)]) == 0
    text = capsys.readouterr().out
    assert "accuracy 90.91% on 11 images" in text and "most confident mistakes" in text
    assert max(map(len, text.splitlines())) <= 80  # a long file path folds in its column
    (labelled / "Hats").mkdir()
    assert main(["eval", MODEL, "--images", str(labelled)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: folder 'Hats'") and error.count("\n") == 1


def test_streaming_needs_no_torch(many: list[Path]) -> None:
    script = (
        "import sys\nfor name in ('torch', 'torchvision', 'timm', 'onnx', 'onnxscript', 'safetensors'):\n"
        "    sys.modules[name] = None\nfrom zoo.cli import main\n"
        f"code = main(['predict', {str(many[0].parent)!r}, '--model', {MODEL!r}, '--json', '--batch-size', '8'])\n"
        "assert code == 0 and 'torch' not in {m.split('.')[0] for m in sys.modules if sys.modules[m]}\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 120


def test_json_rows_are_json_dumps_byte_for_byte(many: list[Path]) -> None:
    """The results file's JSON Lines encoder takes a shortcut for prediction rows; it must write what
    json.dumps writes, for real rows and for names that need escaping, errors and odd values alike."""
    from zoo.core.results_file import encode

    rows = rows_of(predict(many[:20], model=MODEL, topk=10))
    rows += [
        {**rows[0], "file": 'dir/"quoted"\\ü\n\t€.png'},
        {**rows[0], "top": []},
        {**rows[0], "top": [{"class": "x", "probability": float("nan")}]},
        {**rows[0], "top": [{"class": "x", "probability": 1}]},
        {"file": "missing.png", "error": "no such file or directory"},
    ]
    assert encode(rows, "jsonl", 10) == "".join(json.dumps(row) + "\n" for row in rows)
