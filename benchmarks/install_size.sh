#!/usr/bin/env bash
# Installed size of each install variant: a fresh virtual environment per variant, `pip install` of the
# wheel built from this checkout (what a user installs; an editable install would leave the weights out),
# then `du` of the whole environment (Python's own files included) and whether torch or a CUDA library came
# along.
#
#     bash benchmarks/install_size.sh [OUT.json]     # default benchmarks/results-install-size.json
#
# Variants: the default install; [gpu] as the README says to install it (ONNX Runtime's CUDA build in place of
# the CPU build); [torch] as pip resolves it (torch's PyPI wheel, which brings CUDA on Linux).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/benchmarks/results-install-size.json}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
wheel=$(cd "$repo" && python3 -c 'import sys; from pathlib import Path; sys.path.insert(0, "benchmarks")
import release; print(release.build_wheel(Path(sys.argv[1])))' "$work/dist")

measure() {  # NAME, then the pip commands' arguments separated by ';'
    local name=$1 steps=$2 env="$work/$1"
    python3 -m venv "$env"
    IFS=';' read -ra commands <<< "$steps"
    for command in "${commands[@]}"; do
        # shellcheck disable=SC2086
        (cd "$repo" && "$env/bin/pip" $command -q --disable-pip-version-check) 2>&1 | grep -v '^WARNING' || true
    done
    local mib torch cuda
    mib=$(du -sm "$env" | cut -f1)
    torch=$("$env/bin/pip" list 2>/dev/null | grep -ciE '^torch ' || true)
    cuda=$("$env/bin/pip" list 2>/dev/null | grep -ciE '^nvidia-|onnxruntime-gpu' || true)
    printf '  "%s": {"installed_mib": %s, "torch": %s, "cuda_packages": %s}' "$name" "$mib" \
        "$([ "$torch" -gt 0 ] && echo true || echo false)" "$cuda"
    rm -rf "$env"
}

{
    echo "{"
    echo "  \"python\": \"$(python3 -c 'import platform; print(platform.python_version())')\","
    echo "  \"wheel_bytes\": $(stat -c %s "$wheel"),"
    measure default "install $wheel"; echo ","
    measure gpu "install $wheel[gpu];uninstall -y onnxruntime;install --force-reinstall --no-deps onnxruntime-gpu>=1.20"
    echo ","
    measure torch "install $wheel[torch]"; echo
    echo "}"
} > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
