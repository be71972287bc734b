#!/usr/bin/env bash
# Quick start: install what is missing, then train and evaluate the toy
# panoptic, instance and semantic K-Nets on the built-in synthetic data
# (CPU). Results: work_dirs/quickstart/summary.json and .../vis/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
bash "$ROOT/tools/install_deps.sh"
cd "$ROOT"
exec "$PY" tools/quickstart.py "$@"
