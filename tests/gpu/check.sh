#!/usr/bin/env bash
# GPU check of the real models at full size (random weights); see tests/gpu/check.py.
# Without CUDA it prints one line and exits 0. Usage: tests/gpu/check.sh [--models M ...] [--steps N]
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
exec timeout 600 "$PYTHON" -m tests.gpu.check "$@"
