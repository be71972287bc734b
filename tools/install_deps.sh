#!/usr/bin/env bash
# Install what is missing for K-Net into the current Python environment.
# Idempotent: when everything is present it only checks (a few seconds).
#
#   bash tools/install_deps.sh          # runtime stack + this project
#   bash tools/install_deps.sh --tests  # ... plus the test dependencies
#
# Environment: PYTHON (default: python), TORCH_SPEC (default: torch==2.13.0,
# used only when torch is missing), MAX_JOBS (mmcv build jobs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
PIP=("$PY" -m pip install --disable-pip-version-check)
WITH_TESTS=0
for arg in "$@"; do
  case "$arg" in
    --tests) WITH_TESTS=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install_deps.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

log() { echo "[install_deps] $*"; }

# has "dist==version" or "dist" -> exit 0 if installed (and at that version)
has() {
  "$PY" - "$@" <<'EOF'
import sys
from importlib import metadata
for spec in sys.argv[1:]:
    name, _, want = spec.partition('==')
    try:
        got = metadata.version(name)
    except metadata.PackageNotFoundError:
        sys.exit(1)
    if want and got != want:
        sys.exit(1)
EOF
}

"$PY" -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 12), sys.version' \
  || { echo "K-Net needs Python 3.10-3.12" >&2; exit 1; }

if ! "$PY" -c 'import torch' 2>/dev/null; then
  log "installing ${TORCH_SPEC:-torch==2.13.0}"
  "${PIP[@]}" "${TORCH_SPEC:-torch==2.13.0}"
fi

# mmcv 2.1.0 and mmengine 0.10.7 import pkg_resources (gone in setuptools 82).
if ! "$PY" -c 'import pkg_resources' 2>/dev/null || ! has wheel ninja; then
  log "installing setuptools<82, wheel, ninja"
  "${PIP[@]}" 'setuptools<82' wheel ninja
fi

if ! "$PY" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' 2>/dev/null; then
  log "building mmcv 2.1.0 with its ops from source (about 10 min on 2 cores; pip caches the wheel)"
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    "${PIP[@]}" --no-build-isolation mmcv==2.1.0
fi

RUNTIME=(mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 scipy pycocotools
         ftfy regex tqdm shapely terminaltables prettytable)
if ! has "${RUNTIME[@]}"; then
  log "installing the OpenMMLab stack"
  "${PIP[@]}" "${RUNTIME[@]}"
fi

# COCO panoptic quality (knet.evaluation.panoptic_quality): hotcoco, a Rust
# wheel whose only dependency is numpy
if ! has hotcoco==1.3.0; then
  log "installing hotcoco 1.3.0 (panoptic quality)"
  "${PIP[@]}" hotcoco==1.3.0
fi

# openmim: its own dependency 'opendatalab' pins old setuptools/requests and is
# never imported by 'mim train/test'; install mim without it.
if ! has openmim==0.3.9 Click colorama model-index pandas requests rich tabulate; then
  log "installing openmim 0.3.9 (without opendatalab)"
  "${PIP[@]}" --no-deps openmim==0.3.9
  "${PIP[@]}" Click colorama model-index pandas requests rich tabulate
fi

# panopticapi-lite is a faithful repackaging of cocodataset/panopticapi; its
# numpy<2 pin is wrong, so it goes in without dependencies.
if ! "$PY" -c 'import panopticapi.evaluation' 2>/dev/null; then
  log "installing panopticapi-lite (--no-deps)"
  "${PIP[@]}" --no-deps panopticapi-lite
fi

# checked from / so that the source tree itself does not count as installed
if ! (cd / && "$PY" - "$ROOT") <<'EOF' 2>/dev/null
import os, sys
import knet
assert os.path.realpath(os.path.dirname(knet.__file__)).startswith(os.path.realpath(sys.argv[1]))
EOF
then
  log "installing this project (editable)"
  "${PIP[@]}" --no-build-isolation --no-deps -e "$ROOT"
fi

if [ "$WITH_TESTS" = 1 ] && ! has pytest pytest-timeout; then
  log "installing test dependencies"
  "${PIP[@]}" -r "$ROOT/requirements/tests.txt"
fi

log "environment ready ($("$PY" -c 'import torch, mmcv, mmdet, mmseg; print(f"torch {torch.__version__}, mmcv {mmcv.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}")'))"
