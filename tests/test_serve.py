"""`zoo serve`: the HTTP API on ONNX Runtime alone, bad uploads, batching of concurrent requests, and the web
page in a real headless Chromium."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo
from zoo.cli import main
from zoo.core.images import to_model_array
from zoo.decoder import prepare
from zoo.prediction import default_model

fastapi = pytest.importorskip("fastapi", reason="zoo serve's extra is not installed: pip install -e '.[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from zoo.serve import HEAVY_PIXELS, MAX_UPLOAD_BYTES, create_app  # noqa: E402

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.png"))
NAME = "cnn_20k"


@pytest.fixture(scope="module")
def app():
    return create_app()


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


def bomb() -> bytes:
    """A PNG whose header claims 20000×20000 pixels: refused before a pixel is decoded."""
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_serving_imports_neither_torch_nor_the_exporter():
    code = "import sys; from zoo.serve import create_app; create_app(); print('torch' in sys.modules, 'onnx' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_health_and_models_describe_the_shipped_models(client):
    assert client.get("/healthz").json() == {
        "status": "ok",
        "models": [m["name"] for m in client.get("/v1/models").json()],
    }
    models = {m["name"]: m for m in client.get("/v1/models").json()}
    assert set(models) == {n for n in zoo.list_models() if zoo.get_spec(n).weights_sha256}
    spec = zoo.get_spec(NAME)
    assert models[NAME]["params"] == spec.params and models[NAME]["accuracy"] == spec.metrics["test_accuracy"]
    assert models[NAME]["classes"] == list(spec.classes) and models[NAME]["input_size"] == [1, 28, 28]
    schema = client.get("/openapi.json").json()
    assert "/v1/models/{name}/predict" in schema["paths"] and "image/*" in str(schema["paths"])
    documented = schema["paths"]["/v1/models/{name}/predict"]["post"]["parameters"]
    assert [p["name"] for p in documented] == ["name", "topk", "include_input"]


def test_predict_answers_as_zoo_predict_json(client):
    for path in EXAMPLES:
        data = path.read_bytes()
        raw = client.post(f"/v1/models/{NAME}/predict", content=data, headers={"x-file-name": path.name})
        form = client.post(f"/v1/models/{NAME}/predict", files={"file": (path.name, data, "image/png")})
        (expected,) = zoo.predict(path, model=NAME, backend="onnxruntime")
        assert raw.status_code == form.status_code == 200
        assert raw.json() == form.json() == {**expected.to_dict(), "file": path.name}


def test_include_input_shows_the_image_as_the_model_saw_it(client):
    photo = Image.new("RGB", (300, 200), (240, 240, 236))
    photo.paste(Image.open(EXAMPLES[1]).convert("RGB").resize((120, 120)), (60, 40))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG")
    answer = client.post(f"/v1/models/{NAME}/predict?include_input=true&topk=3", content=buffer.getvalue()).json()
    assert len(answer["top"]) == 3 and answer["latency_ms"] > 0
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["input_png"].split(",", 1)[1]))))
    expected = to_model_array(Image.open(io.BytesIO(buffer.getvalue())), zoo.get_spec(NAME).preprocessing)
    np.testing.assert_array_equal(seen, expected[0])


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        (b"", 400, "empty file"),
        (b"this is not an image", 400, "not a recognised image"),
        (EXAMPLES[5].read_bytes()[:150], 400, "truncated or corrupt"),
        (bomb(), 400, "decompression bomb"),
        (b"\0" * (MAX_UPLOAD_BYTES + 1), 413, "exceeds"),
    ],
    ids=["empty", "text", "truncated", "bomb", "oversized"],
)
def test_bad_uploads_get_a_json_error_and_the_server_keeps_serving(client, body, status, fragment):
    response = client.post(f"/v1/models/{NAME}/predict", content=body)
    assert response.status_code == status and fragment in response.json()["error"]
    assert (
        client.post(f"/v1/models/{NAME}/predict", content=EXAMPLES[3].read_bytes()).json()["top"][0]["class"] == "Dress"
    )


def test_unknown_model_and_bad_topk_are_4xx(client):
    response = client.post("/v1/models/cnn_20 k/predict", content=EXAMPLES[0].read_bytes())
    assert response.status_code == 404 and "served:" in response.json()["error"]
    assert client.post(f"/v1/models/{NAME}/predict?topk=0", content=EXAMPLES[0].read_bytes()).status_code == 422


def test_large_multipart_uploads_stay_in_memory(client, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where a spooled upload would land
    noise = np.random.default_rng(0).integers(0, 256, (1500, 1500, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")  # about 6.8 MB: Starlette spools above 1 MB by default
    assert 1 << 20 < len(buffer.getvalue()) < MAX_UPLOAD_BYTES
    response = client.post(f"/v1/models/{NAME}/predict", files={"file": ("noise.png", buffer.getvalue(), "image/png")})
    assert response.status_code == 200 and list(tmp_path.iterdir()) == []


def _large_png(side: int = 2100) -> bytes:
    """A photo-like PNG above HEAVY_PIXELS (a dress on a light background) that compresses to a few KB."""
    assert side * side > HEAVY_PIXELS
    photo = Image.new("RGB", (side, side), (236, 236, 232))
    photo.paste(Image.open(EXAMPLES[3]).convert("RGB").resize((side // 2, side // 2)), (side // 4, side // 4))
    buffer = io.BytesIO()
    photo.save(buffer, format="PNG")
    return buffer.getvalue()


def test_large_uploads_decode_in_their_own_process_as_zoo_predict_does(client, tmp_path):
    """Uploads above HEAVY_PIXELS go to the decoding process: the same input as `zoo predict`'s, the same
    answer, and a corrupt one still gets its one-line error (the error crosses the process intact)."""
    data = _large_png()
    answer = client.post(
        f"/v1/models/{NAME}/predict?include_input=true", content=data, headers={"x-file-name": "big.png"}
    )
    assert answer.status_code == 200, answer.text
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer.json()["input_png"].split(",", 1)[1]))))
    np.testing.assert_array_equal(seen, prepare(data, "big.png", zoo.get_spec(NAME).preprocessing)[0])
    (tmp_path / "big.png").write_bytes(data)
    (expected,) = zoo.predict(tmp_path / "big.png", model=NAME, backend="onnxruntime")
    assert answer.json() == {
        **expected.to_dict(),
        "file": "big.png",
        "input_png": answer.json()["input_png"],
        "latency_ms": answer.json()["latency_ms"],
    }
    truncated = client.post(f"/v1/models/{NAME}/predict", content=data[: len(data) // 2])
    assert truncated.status_code == 400 and "truncated or corrupt" in truncated.json()["error"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")
def test_the_decoding_process_exits_when_idle_so_memory_returns():
    from zoo.decoder import RETIRE_AFTER_SECONDS

    def decoders() -> list[int]:
        found = []
        for pid in _children(os.getpid()):
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
            except FileNotFoundError:  # ps itself, gone
                pass
        return found

    others = set(decoders())  # other tests' apps' (their clients' event loops are gone, so they never retire)
    with TestClient(create_app([NAME])) as running:  # the app's event loop runs between requests
        assert running.post(f"/v1/models/{NAME}/predict", content=_large_png()).status_code == 200
        (decoder,) = set(decoders()) - others
        assert os.getpriority(os.PRIO_PROCESS, decoder) == 19
        time.sleep(RETIRE_AFTER_SECONDS)
        deadline = time.monotonic() + 30  # at the lowest priority, it may wait for a busy CPU to exit
        while _running(decoder) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(decoder)


def test_concurrent_requests_are_batched(app):
    import httpx

    batcher = app.state.models[NAME].batcher
    calls = []
    run = batcher._run
    batcher._run = lambda images: calls.append(len(images)) or run(images)
    data = EXAMPLES[7].read_bytes()

    async def burst():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://zoo") as http:
            return await asyncio.gather(*(http.post(f"/v1/models/{NAME}/predict", content=data) for _ in range(32)))

    try:
        responses = asyncio.run(burst())
    finally:
        batcher._run = run
    assert all(r.status_code == 200 and r.json()["top"][0]["class"] == "Sneaker" for r in responses)
    assert sum(calls) == 32 and len(calls) < 32 and max(calls) > 1


def test_serve_refuses_an_unknown_model_in_one_line(capsys):
    assert main(["serve", "--models", "nope"]) != 0
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 2 and error[-1].startswith("error: ") and "nope" in error[-1]


# --- the web page in a real browser ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _browser_or_skip():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no headless browser: apt-get install chromium chromium-driver (.ci/run does)")
    pytest.importorskip("selenium", reason="selenium is not installed (the test extra has it)")
    return chromium, driver


def _start_server(*options: str) -> tuple[subprocess.Popen, str]:
    """A real `zoo serve` on a free port, once it answers /healthz."""
    import httpx

    port = _free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo.cli", "serve", "--port", str(port), *options], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    pytest.fail("zoo serve did not come up: " + process.stderr.read())


@pytest.fixture(scope="module")
def server():
    process, url = _start_server()
    yield url
    process.terminate()
    process.wait(timeout=20)


def _children(pid: int) -> list[int]:
    listing = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid="], capture_output=True, text=True).stdout
    return [int(child) for child in listing.split()]


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")
def test_a_stop_does_not_wait_for_a_large_decode_in_flight():
    """SIGTERM while worst-case legal uploads (6300x6300 colour PNGs, a fifth of a second or so of decoding each,
    one at a time) are in the decoding process or queued for it: they are dropped rather than waited for, their
    clients are told the server is stopping, and the server exits leaving no process behind.

    The stop is sent once the first upload has been answered, so the decoding process is running and the others
    are still queued, however fast this machine decodes; an upload whose decode ends between the signal and its
    handling may still be answered, so the test asks that most of the queue was dropped, not all of it."""
    import threading

    import httpx

    pattern = np.tile((np.arange(6300, dtype=np.uint16) * 7 % 256).astype(np.uint8), (6300, 1))
    buffer = io.BytesIO()
    Image.fromarray(pattern, "L").convert("RGB").save(buffer, "PNG", compress_level=1)
    process, url = _start_server("--models", NAME)
    answers, first_answer = [], threading.Event()

    def upload() -> None:
        answers.append(httpx.post(f"{url}/v1/models/{NAME}/predict", content=buffer.getvalue(), timeout=60))
        first_answer.set()

    uploads = [threading.Thread(target=upload) for _ in range(8)]
    for thread in uploads:
        thread.start()
    assert first_answer.wait(timeout=60)
    children = _children(process.pid)  # the decoder and its resource tracker
    process.terminate()
    # uvicorn stops gracefully, then re-raises the signal it caught: the exit status of a SIGTERM
    assert process.wait(timeout=20) in (0, -signal.SIGTERM), process.stderr.read()
    for thread in uploads:
        thread.join(timeout=20)
    assert len(children) >= 1 and len(answers) == 8
    outcomes = [(a.status_code, a.json().get("error", "")) for a in answers]
    assert {status for status, _ in outcomes} <= {200, 503}, outcomes
    dropped = [error for status, error in outcomes if status == 503]
    assert all("stopping" in error for error in dropped), outcomes
    assert len(dropped) >= 5, outcomes  # a stop that waited for the queue would have answered all eight
    time.sleep(0.5)
    assert [child for child in children if _running(child)] == []
    assert "Traceback" not in process.stderr.read()


def test_web_page_classifies_an_uploaded_example(server, tmp_path):
    chromium, driver = _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,800"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        browser.get(server + "/")
        wait = WebDriverWait(browser, 30)
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#model option")) > 0)
        # It opens on `zoo predict`'s default model, the models grouped by data set.
        select = Select(browser.find_element(By.ID, "model"))
        assert select.first_selected_option.get_attribute("value") == default_model()
        groups = [g.get_attribute("label") for g in browser.find_elements(By.CSS_SELECTOR, "#model optgroup")]
        assert groups[0].startswith("Fashion-MNIST") and any(g.startswith("CIFAR-10") for g in groups)
        select.select_by_value(NAME)
        browser.find_element(By.ID, "file").send_keys(str(EXAMPLES[3]))  # 3-dress.png
        wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "top-class"), "Dress"))
        bars = browser.find_elements(By.CSS_SELECTOR, "#bars .bar")
        assert len(bars) == 5 and bars[0].get_attribute("data-class") == "Dress"
        assert "ms" in browser.find_element(By.ID, "latency").text
        seen = browser.find_element(By.ID, "seen")
        assert seen.get_attribute("src").startswith("data:image/png;base64,") and seen.size["width"] >= 224
        # The README's picture: ZOO_PAGE_SCREENSHOT=$PWD/docs/serve-page.png pytest tests/test_serve.py -k web_page
        browser.save_screenshot(os.environ.get("ZOO_PAGE_SCREENSHOT", str(tmp_path / "page.png")))
        # A bad file shows the server's error and hides the old result.
        bad = tmp_path / "notes.png"
        bad.write_text("not an image")
        browser.find_element(By.ID, "file").send_keys(str(bad))
        wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "error"), "not a recognised image"))
        assert not browser.find_element(By.ID, "result").is_displayed()
    finally:
        browser.quit()


def test_models_are_listed_in_registry_order_with_the_cli_default(client):
    listed = client.get("/v1/models").json()
    names = [m["name"] for m in listed]
    assert names == [n for n in zoo.list_models() if n in names] == client.get("/healthz").json()["models"]
    assert [m["name"] for m in listed if m["default"]] == [default_model()]


def test_every_error_has_one_shape(client):
    for answer in (
        client.post(f"/v1/models/{NAME}/predict?topk=abc", content=EXAMPLES[0].read_bytes()),
        client.get("/no/such/route"),
        client.get(f"/v1/models/{NAME}/predict"),  # a method the route does not take
        client.post("/v1/models/nope/predict", content=EXAMPLES[0].read_bytes()),
    ):
        assert answer.status_code in (404, 405, 422) and set(answer.json()) == {"error"}, answer.text
    assert "topk" in client.post(f"/v1/models/{NAME}/predict?topk=abc", content=b"x").json()["error"]
    maybe = client.post(f"/v1/models/{NAME}/predict?include_input=maybe", content=EXAMPLES[0].read_bytes())
    assert maybe.status_code == 422 and "include_input" in maybe.json()["error"]
    yes = client.post(f"/v1/models/{NAME}/predict?include_input=yes&topk=2", content=EXAMPLES[0].read_bytes())
    assert len(yes.json()["top"]) == 2 and "input_png" in yes.json()


def test_each_request_is_logged_in_one_line(client, caplog):
    with caplog.at_level("INFO", logger="zoo.serve"):
        client.get("/healthz")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "zoo.serve"]
    assert " GET /healthz 200 " in line and line.endswith(" ms")


def test_worker_sessions_run_on_their_share_of_the_cores():
    """`zoo serve --workers N` gives each worker's sessions cores // N intra-op threads: ONNX Runtime's default
    (a spinning thread per core in every process) made requests wait for a core under load."""
    served = create_app(["cnn_20k"], threads=1).state.models
    assert served["cnn_20k"].classifier.session.get_session_options().intra_op_num_threads == 1
    default = create_app(["cnn_20k"]).state.models
    assert default["cnn_20k"].classifier.session.get_session_options().intra_op_num_threads == 0  # ORT's own


def test_the_openvino_runtime_serves_the_same_answers(client):
    """`zoo serve --runtime openvino`: the same API and, in f32, the same classes as ONNX Runtime."""
    pytest.importorskip("openvino")
    openvino = TestClient(create_app(["cnn_20k", "cifar_cnn_best"], runtime="openvino"))
    for name, image in (("cnn_20k", EXAMPLES[3]), ("cifar_cnn_best", EXAMPLES[8])):
        body = image.read_bytes()
        theirs = openvino.post(f"/v1/models/{name}/predict", content=body).json()
        ours = client.post(f"/v1/models/{name}/predict", content=body).json()
        assert theirs["backend"] == "openvino" and ours["backend"] == "onnxruntime"
        assert [t["class"] for t in theirs["top"]] == [t["class"] for t in ours["top"]]
        assert theirs["top"][0]["probability"] == pytest.approx(ours["top"][0]["probability"], abs=1e-3)


def test_an_unknown_runtime_is_refused_before_serving(capsys):
    assert main(["serve", "--runtime", "tensorrt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: unknown --runtime 'tensorrt'; choose one of onnxruntime, openvino, openvino-bf16"]
