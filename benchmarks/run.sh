#!/usr/bin/env bash
# Regenerates the published benchmark (benchmarks/results-<host>.{json,csv,png}) on a quiet machine.
# Run from the repository root after `pip install -e ".[plot]"`, with the data sets in $ZOO_DATA.
# Every backend, batch sizes 1-256, 1 thread and all cores; about 25-35 minutes on 2 cores (the
# CIFAR models, which run image and mirror per prediction, take most of it). Further arguments name the
# models or patterns to measure (default: all), e.g. `benchmarks/run.sh xeon-2core-fashion-mnist 'fcn_*' 'cnn_*'`.
set -euo pipefail
name="${1:-$(hostname -s)}"
shift || true
threads="${THREADS:-1,$(nproc)}"
export COLUMNS="${COLUMNS:-200}"  # the .txt copy of the Rich tables is readable only when wide enough
zoo benchmark "$@" --backends all --batch-sizes 1,8,64,256 --threads "$threads" \
    --warmup 1 --min-time 2 --min-runs 5 --accuracy-images 1000 \
    --save-json "benchmarks/results-$name.json" --csv "benchmarks/results-$name.csv" \
    --plot "benchmarks/results-$name.png" | tee "benchmarks/results-$name.txt"
