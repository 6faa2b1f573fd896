"""Load tests of `zoo serve` on this machine, beside a bare Starlette + ONNX Runtime app (benchmarks/bare_app.py).

    python3 benchmarks/load_test.py [--model cnn_20k] [--workers 2] [--clients 32] [--good-clients 32]
        [--seconds 20] [--rounds 3] [--mix-runs 3] [--json FILE]
    python3 benchmarks/load_test.py --summary FILE    # the README's lines for a saved report
    python3 benchmarks/load_test.py --model cifar_cnn_best --runtimes onnxruntime,openvino-bf16 --json FILE

1. Throughput (needs `hey`, Debian's package): requests/s and p99 of `zoo serve` and of the bare app, side by
   side, under the same load, for a 28x28 data-set PNG and a 224x224 product-photo JPEG; the bare app both
   as written (ONNX Runtime's default threads) and with the cores split between its workers, as zoo serve does;
   `--rounds` times in turn, each server's median round reported.
2. Hostile mix: `--clients` keep-alive connections send worst-case legal uploads (a 6300x6300 PNG, just
   under the 40-megapixel limit) back to back, so that that many are in flight the whole time, while
   `--good-clients` more send good images with a malformed file among every seven, for `--seconds`.
   Reported: the servers' peak and idle memory (RSS of all processes), good requests' p99, that every bad
   upload got a 4xx JSON error, and that the server still answers afterwards; run `--mix-runs` times on
   fresh servers, each run's p99.
3. Worst case only: every connection sends the worst-case upload, so that `--clients` of them arrive at once:
   peak memory, and that each is answered.

Everything runs on 127.0.0.1 and stops by itself. The mix's client is a minimal HTTP/1.1 writer on asyncio
streams, so that the load generator takes as little CPU from the server as it can.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
DRESS = REPO / "examples" / "3-dress.png"


def images() -> dict[str, bytes]:
    """The uploads: a data-set PNG, a product-style JPEG (dark dress on white, 224x224, about 9 KB), the
    worst-case legal PNG (6300x6300, a repeating pattern that compresses to about 100 KB) and bad ones."""
    png = DRESS.read_bytes()
    photo = ImageOps.invert(Image.open(DRESS).convert("L")).resize((224, 224), Image.Resampling.LANCZOS)
    jpeg = io.BytesIO()
    photo.convert("RGB").save(jpeg, "JPEG", quality=85)
    pattern = np.tile((np.arange(6300, dtype=np.uint16) * 7 % 256).astype(np.uint8), (6300, 1))
    worst = io.BytesIO()
    Image.fromarray(pattern, "L").convert("RGB").save(worst, "PNG", optimize=False, compress_level=9)
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    return {"png": png, "jpeg": jpeg.getvalue(), "worst": worst.getvalue(), "bomb": bomb,
            "truncated": png[:150], "not an image": b"this is not an image"}  # fmt: skip


SERVERS = ("zoo serve", "bare app", "bare app, tuned threads")  # as throughput() runs them, in the summary's order


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], port: int, env: dict | None = None) -> subprocess.Popen:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                               env={**os.environ, **(env or {})})  # fmt: skip
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(1.0)  # every worker has loaded its session
            return process
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{command[0]} did not come up")


def stop(process: subprocess.Popen) -> float:
    """SIGTERM the server's process group; seconds until it had exited."""
    started = time.perf_counter()
    os.killpg(process.pid, 15)
    process.wait(timeout=30)
    return time.perf_counter() - started


def zoo_server(model: str, port: int, workers: int, runtime: str = "onnxruntime") -> subprocess.Popen:
    return start([sys.executable, "-m", "zoo.cli", "serve", "--models", model, "--port", str(port),
                  "--workers", str(workers), "--runtime", runtime], port)  # fmt: skip


def bare_server(model: str, port: int, workers: int, threads: int = 0) -> subprocess.Popen:
    """The bare app; `threads`: ONNX Runtime intra-op threads per worker (0: its default, one per core)."""
    from zoo.core.weights import shipped_weights

    onnx = shipped_weights(model).onnx_verified()
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(REPO / "benchmarks"), "bare_app:app", "--port",
               str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    return start(command, port, {"BARE_ONNX": str(onnx), "BARE_THREADS": str(threads)})


def tuned_bare_server(model: str, port: int, workers: int) -> subprocess.Popen:
    """The bare app with the thread setting `zoo serve` makes: the cores split between the workers."""
    from zoo.serve import threads_per_worker

    return bare_server(model, port, workers, threads=threads_per_worker(workers))


def hey(url: str, body: bytes, content_type: str, clients: int, seconds: float) -> dict[str, float]:
    with open(Path(os.environ.get("TMPDIR", "/tmp")) / f"zoo-load-{os.getpid()}.body", "wb") as handle:
        handle.write(body)
    done = subprocess.run(
        ["hey", "-z", f"{seconds}s", "-c", str(clients), "-m", "POST", "-T", content_type, "-D", handle.name, url],
        capture_output=True, text=True,
    )  # fmt: skip
    os.unlink(handle.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))
    p99 = re.search(r"99%+ in ([\d.]+) secs", done.stdout)  # absent when nothing was answered
    statuses = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", done.stdout))
    return {"requests_per_second": round(rate, 1), "p99_ms": round(float(p99.group(1)) * 1000, 1) if p99 else None,
            "statuses": statuses}  # fmt: skip


def warm_up(url: str, body: bytes, content_type: str, clients: int) -> None:
    """Load for 2 s at a time until requests are answered: a server's port opens before its workers have
    loaded their sessions (uvicorn's supervisor binds it), and a large model or a compiling runtime takes
    seconds."""
    deadline = time.perf_counter() + 60
    while "200" not in hey(url, body, content_type, clients, 2)["statuses"]:
        if time.perf_counter() > deadline:
            raise SystemExit(f"{url} answered nothing in 60 s")


def throughput(model: str, workers: int, clients: int, seconds: float, uploads: dict[str, bytes], rounds: int) -> dict:
    """Each server under `hey`, `rounds` times in turn (zoo, bare, tuned bare; again ...), so that a slow spell
    of the machine falls on all three alike; each server's figures are its median round's."""
    results = {}
    for kind, content_type in (("png", "image/png"), ("jpeg", "image/jpeg")):
        servers = (("zoo serve", zoo_server, f"/v1/models/{model}/predict"),
                   ("bare app", bare_server, "/predict"),
                   ("bare app, tuned threads", tuned_bare_server, "/predict"))  # fmt: skip
        measured: dict[str, list[dict]] = {name: [] for name, _, _ in servers}
        for _ in range(rounds):
            for name, server, path in servers:
                port = free_port()
                process = server(model, port, workers)
                try:
                    warm_up(f"http://127.0.0.1:{port}{path}", uploads[kind], content_type, clients)
                    measured[name].append(hey(f"http://127.0.0.1:{port}{path}", uploads[kind], content_type,
                                              clients, seconds))  # fmt: skip
                finally:
                    stop(process)
        for name, runs in measured.items():
            by_rate = sorted(runs, key=lambda run: run["requests_per_second"])
            results[f"{name}, {kind}"] = by_rate[len(by_rate) // 2] | {
                "rounds_requests_per_second": [run["requests_per_second"] for run in runs]
            }
        zoo = results[f"zoo serve, {kind}"]["requests_per_second"]
        results[f"ratio, {kind}"] = round(zoo / results[f"bare app, {kind}"]["requests_per_second"], 2)
        tuned = results[f"bare app, tuned threads, {kind}"]["requests_per_second"]
        results[f"ratio to tuned, {kind}"] = round(zoo / tuned, 2)
    return results


def runtimes_throughput(
    model: str, workers: int, clients: int, seconds: float, uploads: dict[str, bytes], rounds: int, runtimes: list[str]
) -> dict:
    """`zoo serve --runtime R` for each runtime under the same `hey` load, `rounds` times in turn; each runtime's
    figures are its median round's, with its ratio to the first runtime's (ONNX Runtime by default)."""
    results: dict = {}
    for kind, content_type in (("png", "image/png"), ("jpeg", "image/jpeg")):
        measured: dict[str, list[dict]] = {runtime: [] for runtime in runtimes}
        for _ in range(rounds):
            for runtime in runtimes:
                port = free_port()
                process = zoo_server(model, port, workers, runtime)
                url = f"http://127.0.0.1:{port}/v1/models/{model}/predict"
                try:
                    warm_up(url, uploads[kind], content_type, clients)
                    measured[runtime].append(hey(url, uploads[kind], content_type, clients, seconds))
                finally:
                    stop(process)
        for runtime, runs in measured.items():
            by_rate = sorted(runs, key=lambda run: run["requests_per_second"])
            results[f"{runtime}, {kind}"] = by_rate[len(by_rate) // 2] | {
                "rounds_requests_per_second": [run["requests_per_second"] for run in runs]
            }
        first = results[f"{runtimes[0]}, {kind}"]["requests_per_second"]
        for runtime in runtimes[1:]:
            results[f"ratio {runtime} to {runtimes[0]}, {kind}"] = round(
                results[f"{runtime}, {kind}"]["requests_per_second"] / first, 2
            )
    return results


# --- the hostile mix ---------------------------------------------------------------------------------------


Request = tuple[str, str, bytes, int]  # (kind, path, body, expected status)


def request_mix(model: str, uploads: dict[str, bytes]) -> tuple[list[Request], list[Request]]:
    """What the good clients cycle through (6 good images, then 1 malformed file or unknown model, in turn) and
    what the hostile ones send (the worst-case upload, again and again)."""
    predict = f"/v1/models/{model}/predict"
    good = [("good", predict, uploads["png"], 200), ("good", predict, uploads["jpeg"], 200)]
    bad = [("bad", predict, uploads[k], 400) for k in ("bomb", "truncated", "not an image")]
    bad.append(("bad", "/v1/models/no_such_model/predict", uploads["png"], 404))
    cycle = []
    for index in range(7 * len(bad)):
        cycle.append(bad[index // 7] if index % 7 == 3 else good[index % 2])
    return cycle, [("worst", predict, uploads["worst"], 200)]


async def client(host: str, port: int, mix, offset: int, deadline: float, results: list) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    index = offset
    try:
        while time.perf_counter() < deadline:
            kind, path, body, expected = mix[index % len(mix)]
            index += 1
            head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            started = time.perf_counter()
            writer.write(head + body)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            answer = await reader.readexactly(length)
            status = int(status_line.split()[1]) if status_line else 0
            one_error = status < 400 or set(json.loads(answer)) == {"error"}
            results.append((kind, status, expected, time.perf_counter() - started, one_error))
    finally:
        writer.close()


def rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants (uvicorn's workers)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, StopIteration):
            continue
        stack += [int(c) for c in children]
    return total / 1024


def percentile_ms(seconds: list[float], q: float) -> float | None:
    """The q-quantile in milliseconds, None without samples (JSON has no NaN)."""
    ordered = sorted(seconds)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) if ordered else None


def hostile_mix(
    model: str, workers: int, clients: int, good_clients: int, seconds: float, uploads: dict[str, bytes]
) -> dict:
    """`clients` connections sending worst-case uploads back to back, so that that many are decoded or queued
    at once the whole time, and `good_clients` sending good and malformed ones beside them (0: none)."""
    port = free_port()
    process = zoo_server(model, port, workers)
    try:
        cycle, worst = request_mix(model, uploads)
        connections = [(worst, 0)] * clients + [(cycle, i * 5) for i in range(good_clients)]
        idle = rss_mib(process.pid)
        peak, sampling = [idle], threading.Event()

        def sample() -> None:
            while not sampling.wait(0.05):
                peak.append(rss_mib(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        results = asyncio.run(_load("127.0.0.1", port, connections, seconds))
        wall = time.perf_counter() - started
        sampling.set()
        time.sleep(3.0)  # idle again: what the server keeps
        after = rss_mib(process.pid)
        still_serving = asyncio.run(_load("127.0.0.1", port, [(cycle[:1], 0)], 0.5))
        stop_seconds = stop(process)
    except BaseException:
        stop(process)
        raise
    good = [r for r in results if r[0] == "good"]
    return {
        "requests": len(results), "seconds": round(wall, 1),
        "good": len(good), "worst_case": sum(1 for r in results if r[0] == "worst"),
        "bad": sum(1 for r in results if r[0] == "bad"),
        "good_p50_ms": percentile_ms([r[3] for r in good], 0.5),
        "good_p99_ms": percentile_ms([r[3] for r in good], 0.99),
        "good_mean_ms": round(statistics.fmean(r[3] for r in good) * 1000, 1) if good else None,
        "worst_case_p50_ms": percentile_ms([r[3] for r in results if r[0] == "worst"], 0.5),
        "worst_case_p99_ms": percentile_ms([r[3] for r in results if r[0] == "worst"], 0.99),
        "failed_good": sum(1 for r in results if r[0] != "bad" and r[1] != 200),
        "bad_not_refused_as_expected": sum(1 for r in results if r[0] == "bad" and r[1] != r[2]),
        "errors_not_in_one_shape": sum(1 for r in results if not r[4]),
        "rss_mib_idle": round(idle, 1), "rss_mib_peak": round(max(peak), 1), "rss_mib_after": round(after, 1),
        "still_serving": bool(still_serving) and all(r[1] == 200 for r in still_serving),
        "stop_seconds": round(stop_seconds, 2),
    }  # fmt: skip


def _good_p99(mix: dict) -> str:
    runs = mix.get("good_p99_ms_runs", [mix["good_p99_ms"]])
    if not mix["good"]:
        return ""
    if len(runs) == 1:
        return f"good p99 {runs[0]} ms, "
    return (
        f"good p99 {' / '.join(map(str, runs))} ms in {len(runs)} runs, each on a fresh server (the rest: the first), "
    )


async def _load(host: str, port: int, connections: list[tuple[list[Request], int]], seconds: float) -> list:
    """One client per (requests to cycle through, where to start in them), all until `seconds` have passed."""
    results: list = []
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(client(host, port, mix, offset, deadline, results) for mix, offset in connections))
    return results


def summary(report: dict) -> str:
    """The README's lines for a report: the throughput table beside the bare app, then the hostile mix and the
    worst-case burst in one bullet each (tests/test_readme.py holds the README to them)."""
    lines = []
    if isinstance(report["throughput"], dict):
        t = report["throughput"]
        lines += ["| upload | zoo serve | bare app | ratio | bare app, tuned threads | ratio |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
        for kind, label in (("png", "28×28 data-set PNG"), ("jpeg", "224×224 product-photo JPEG")):
            cells = [f"{t[f'{server}, {kind}']['requests_per_second']:,.0f} req/s, p99 {t[f'{server}, {kind}']['p99_ms']} ms"
                     for server in SERVERS]  # fmt: skip
            lines.append(f"| {label} | {cells[0]} | {cells[1]} | {t[f'ratio, {kind}']:.2f}× | {cells[2]} | "
                         f"{t[f'ratio to tuned, {kind}']:.2f}× |")  # fmt: skip
        rounds = t["zoo serve, png"].get("rounds_requests_per_second", [])
        if len(rounds) > 1:
            each = "; ".join(
                f"{kind.upper()} " + " / ".join(", ".join(f"{rate:,.0f}" for rate in t[f"{server}, {kind}"]["rounds_requests_per_second"])
                                           for server in SERVERS)
                for kind in ("png", "jpeg")
            )  # fmt: skip
            lines += ["", f"Each cell is the median of {len(rounds)} rounds, the three servers in turn; every round's req/s "
                          f"(zoo serve / bare app / tuned): {each}."]  # fmt: skip
        lines.append("")
    for key, what in (("hostile_mix", "Hostile mix"), ("worst_case_only", "Worst case only")):
        h = report[key]
        who = f"{report['clients']} connections"
        if key == "hostile_mix":
            who += f" of worst-case uploads and {report['good_clients']} of good and malformed ones"
        lines.append(
            f"- {what}, {who} for {h['seconds']} s: {h['requests']:,} requests "
            f"({h['good']:,} good, {h['bad']:,} malformed, {h['worst_case']:,} worst-case); "
            + _good_p99(h)
            + f"worst-case p50 {h['worst_case_p50_ms']} ms; {h['failed_good']} good or "
            f"worst-case requests failed, {h['bad_not_refused_as_expected']} malformed ones not refused; server "
            f"memory {h['rss_mib_idle']:,.0f} MiB idle, {h['rss_mib_peak']:,.0f} MiB peak, {h['rss_mib_after']:,.0f} MiB "
            f"after; {'still serving' if h['still_serving'] else 'NOT serving'} afterwards, stopped in {h['stop_seconds']} s."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn_20k")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument(
        "--clients", type=int, default=32, help="concurrent keep-alive connections (worst-case ones in the mix)"
    )
    parser.add_argument(
        "--good-clients", type=int, default=32, help="connections sending good and malformed uploads in the mix"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="per measurement")
    parser.add_argument(
        "--mix-runs", type=int, default=3, help="hostile mixes, each on a fresh server: is p99 reliable?"
    )
    parser.add_argument("--rounds", type=int, default=3, help="hey runs of each server, in turn; the median counts")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--summary", type=Path, help="print the README's lines for a saved report, and stop")
    parser.add_argument(
        "--runtimes",
        help="compare zoo serve's runtimes only (e.g. onnxruntime,openvino-bf16): req/s and p99 of each, no mix",
    )
    args = parser.parse_args()
    if args.summary:
        print(summary(json.loads(args.summary.read_text())), end="")
        return
    from zoo.core.device import cpu_info, usable_cores

    uploads = images()
    if args.runtimes:
        runtimes = [r for r in args.runtimes.split(",") if r]
        report = {
            "model": args.model, "workers": args.workers, "clients": args.clients, "seconds": args.seconds,
            "rounds": args.rounds, "machine": f"{cpu_info()['model']}, {usable_cores()} cores",
            "uploads_bytes": {k: len(uploads[k]) for k in ("png", "jpeg")},
            "runtimes": runtimes_throughput(
                args.model, args.workers, args.clients, args.seconds, uploads, args.rounds, runtimes
            ),
        }  # fmt: skip
        print(json.dumps(report, indent=2))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        return
    throughput_report = (
        throughput(args.model, args.workers, args.clients, args.seconds, uploads, args.rounds)
        if shutil.which("hey")
        else "skipped: hey is not installed (apt-get install hey)"
    )
    mixes = [
        hostile_mix(args.model, args.workers, args.clients, args.good_clients, args.seconds, uploads)
        for _ in range(args.mix_runs)
    ]
    report = {
        "model": args.model, "workers": args.workers, "clients": args.clients, "good_clients": args.good_clients,
        "machine": f"{cpu_info()['model']}, {usable_cores()} cores",
        "uploads_bytes": {k: len(v) for k, v in uploads.items()},
        "throughput": throughput_report,
        "hostile_mix": mixes[0] | {"good_p99_ms_runs": [mix["good_p99_ms"] for mix in mixes]},
        "worst_case_only": hostile_mix(args.model, args.workers, args.clients, 0, args.seconds, uploads),
    }  # fmt: skip
    print(json.dumps(report, indent=2))
    print(summary(report), end="")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
