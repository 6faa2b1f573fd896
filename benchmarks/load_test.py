"""A bounded load test of `zoo serve` on this machine: requests/s, latency, errors and memory.

    python3 benchmarks/load_test.py [--model cnn_20k] [--workers 2] [--clients 32] [--seconds 30] [--json FILE]

It starts `zoo serve` on 127.0.0.1 (a free port), sends a mix of uploads from `--clients` concurrent
keep-alive connections for `--seconds`, then stops the server. The mix: 80% good images (the examples,
in turn), 20% bad ones (truncated, not an image, a decompression bomb, an unknown model), which must all
get a 4xx JSON error while the good ones keep succeeding. Traffic goes to the loopback address only and
stops by itself. The client is a minimal HTTP/1.1 writer on asyncio streams, so that the load generator
takes as little of the machine's CPU from the server as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.png"))


def bomb() -> bytes:
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def request_mix(model: str) -> list[tuple[str, str, bytes, int]]:
    """(kind, path, body, expected status) in the order the clients cycle through: 8 good for 2 bad."""
    good = [("good", f"/v1/models/{model}/predict", p.read_bytes(), 200) for p in EXAMPLES]
    truncated = EXAMPLES[5].read_bytes()[:150]
    bad = [
        ("truncated", f"/v1/models/{model}/predict", truncated, 400),
        ("not an image", f"/v1/models/{model}/predict", b"this is not an image", 400),
        ("bomb", f"/v1/models/{model}/predict", bomb(), 400),
        ("unknown model", "/v1/models/no_such_model/predict", EXAMPLES[0].read_bytes(), 404),
    ]
    mix = []
    for index in range(40):
        mix.append(bad[(index // 8) % len(bad)] if index % 5 == 4 else good[index % len(good)])
    return mix


async def client(host: str, port: int, mix, offset: int, deadline: float, results: list) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    index = offset
    try:
        while time.perf_counter() < deadline:
            kind, path, body, expected = mix[index % len(mix)]
            index += 1
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/png\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            started = time.perf_counter()
            writer.write(head + body)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latency = time.perf_counter() - started
            status = int(status_line.split()[1]) if status_line else 0
            results.append((kind, status, expected, latency))
    finally:
        writer.close()


def rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants (uvicorn workers), in KiB."""
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
    return total


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn_20k")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--clients", type=int, default=32, help="concurrent keep-alive connections")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "zoo.cli", "serve", "--models", args.model, "--port", str(port),
         "--workers", str(args.workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        mix = request_mix(args.model)
        asyncio.run(_wait_until_up("127.0.0.1", port))
        # Warm-up: every worker loads and runs its session once before memory and time are measured.
        asyncio.run(_load("127.0.0.1", port, mix, args.clients, 2.0))
        memory_before = rss_kib(server.pid)
        started = time.perf_counter()
        results = asyncio.run(_load("127.0.0.1", port, mix, args.clients, args.seconds))
        wall = time.perf_counter() - started
        memory_after = rss_kib(server.pid)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)

    good = [r for r in results if r[0] == "good"]
    report = {
        "model": args.model, "workers": args.workers, "clients": args.clients, "seconds": round(wall, 1),
        "machine": f"{cpu_model()}, {os.cpu_count()} cores",
        "requests": len(results), "requests_per_second": round(len(results) / wall, 1),
        "good_requests_per_second": round(len(good) / wall, 1),
        "latency_ms_good": {"p50": round(percentile([r[3] for r in good], 0.5) * 1000, 2),
                            "p99": round(percentile([r[3] for r in good], 0.99) * 1000, 2),
                            "mean": round(statistics.fmean(r[3] for r in good) * 1000, 2) if good else None},
        "latency_ms_all": {"p50": round(percentile([r[3] for r in results], 0.5) * 1000, 2),
                           "p99": round(percentile([r[3] for r in results], 0.99) * 1000, 2)},
        "failed_good_requests": sum(1 for r in good if r[1] != 200),
        "bad_requests": sum(1 for r in results if r[0] != "good"),
        "bad_requests_not_refused_as_expected": sum(1 for r in results if r[0] != "good" and r[1] != r[2]),
        "memory_mib_before": round(memory_before / 1024, 1), "memory_mib_after": round(memory_after / 1024, 1),
    }  # fmt: skip
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


async def _wait_until_up(host: str, port: int, timeout: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            await writer.drain()
            if b"200" in await reader.readline():
                writer.close()
                return
        except OSError:
            await asyncio.sleep(0.2)
    raise SystemExit("zoo serve did not come up")


async def _load(host: str, port: int, mix, clients: int, seconds: float) -> list:
    results: list = []
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(client(host, port, mix, i * 7, deadline, results) for i in range(clients)))
    return results


if __name__ == "__main__":
    main()
