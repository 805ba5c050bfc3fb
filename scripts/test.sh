#!/usr/bin/env bash
# The test suite (offline, CPU), then the regression check against the committed baseline and a
# packaging check (a wheel installed into a clean virtual environment).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1

python -m pytest -q "$@"
bash scripts/regression_check.sh
bash scripts/wheel_check.sh
