#!/usr/bin/env bash
# Install what is missing (runtime + test dependencies) and run the whole
# test suite on CPU. Extra arguments go to pytest (e.g. -k panoptic).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
bash "$ROOT/tools/install_deps.sh" --tests
cd "$ROOT"
exec "$PY" -m pytest tests -q -p no:cacheprovider --timeout=1200 "$@"
