#!/usr/bin/env bash
# Installs what prmbench needs into ./.venv (idempotent). Sourced by main.sh and test.sh.
# - Python >= 3.11 with venv; torch pinned to 2.13.0 (on machines that carry its CPU build on disk,
#   pip takes that file; elsewhere it comes from PyPI);
# - bubblewrap for the code sandbox, chromium for the report's browser test, where apt-get is
#   available and we are root.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
VENV="${PRMBENCH_VENV:-$ROOT/.venv}"

if ! command -v bwrap >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get install -y -qq bubblewrap >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq bubblewrap >/dev/null 2>&1; }) \
    || echo "setup: could not install bubblewrap (code tasks will need it)" >&2
fi
# - chromium for the report's browser test (tests/test_report.py; skipped without it).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }) \
    || echo "setup: could not install chromium (the report's browser test will be skipped)" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.prmbench-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
  "$VENV/bin/python" -c "import torch" 2>/dev/null || "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]"
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
export PRMBENCH_PY="$VENV/bin/python"
# The shared data beside a checkout (CI and developer machines); elsewhere data comes from the hub.
if [ -z "${PRMBENCH_DATA_DIR:-}" ] && [ -d "$ROOT/../shared/data" ]; then
  export PRMBENCH_DATA_DIR="$(cd "$ROOT/../shared/data" && pwd)"
fi
if [ -z "${PRMBENCH_MODELS_DIR:-}" ] && [ -d "$ROOT/../shared/models" ]; then
  export PRMBENCH_MODELS_DIR="$(cd "$ROOT/../shared/models" && pwd)"
fi
