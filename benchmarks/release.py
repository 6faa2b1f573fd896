"""The release artefact: the wheel built from this checkout, and its install in a fresh virtual environment.

    python3 benchmarks/release.py [--record benchmarks/results-release.json]

builds the wheel from the checkout's files (tracked, and new ones git does not ignore: never a stale build/
folder), installs it with its dependencies into a fresh virtual environment outside any checkout, and
records the wheel's size, what weights it carries and the installed size (`du` of the whole environment,
Python's own files included). tests/test_release.py drives the same wheel and environment end to end.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_WHEEL_BYTES = 15_000_000  # a package index's default limit is 100 MB; ours stays far below it


def build_wheel(out: Path) -> Path:
    """The wheel of this checkout, built from a clean copy of its files into `out`."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "src"
        for name in filter(None, files):
            if (REPO / name).is_file():
                (source / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, source / name)
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
            check=True, capture_output=True,
        )  # fmt: skip
    (wheel,) = out.glob("zoo_classifiers-*.whl")
    return wheel


def install(wheel: Path, venv: Path, extras: str = "") -> Path:
    """A fresh virtual environment at `venv` with the wheel (and `extras`) installed; its bin/ folder."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    target = f"{wheel}[{extras}]" if extras else str(wheel)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", target],
        cwd=venv, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"pip install {target} failed:\n{done.stderr[-3000:]}")
    return venv / "bin"


def weights_in(wheel: Path) -> list[str]:
    return sorted(
        Path(n).name
        for n in zipfile.ZipFile(wheel).namelist()
        if n.startswith("zoo/weights/") and not n.endswith(".py")
    )


def installed_mib(venv: Path) -> int:
    return int(subprocess.run(["du", "-sm", str(venv)], capture_output=True, text=True, check=True).stdout.split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", type=Path, help="write the measurements here as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        wheel = build_wheel(Path(work) / "dist")
        bin_dir = install(wheel, Path(work) / "venv")
        listed = subprocess.run([str(bin_dir / "pip"), "list", "--format=json"], capture_output=True, text=True)
        packages = {p["name"].lower() for p in json.loads(listed.stdout)}
        record = {
            "wheel": wheel.name,
            "wheel_bytes": wheel.stat().st_size,
            "weights_files": weights_in(wheel),
            "installed_mib": installed_mib(Path(work) / "venv"),
            "torch": "torch" in packages,
            "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.machine()}",
        }
    text = json.dumps(record, indent=2) + "\n"
    if args.record:
        args.record.write_text(text)
    sys.stdout.write(text)
    if record["wheel_bytes"] > MAX_WHEEL_BYTES:
        sys.exit(f"the wheel is {record['wheel_bytes']:,} bytes, over the {MAX_WHEEL_BYTES:,} allowed")


if __name__ == "__main__":
    main()
