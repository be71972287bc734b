#!/usr/bin/env bash
# Evaluation on slurm through OpenMIM, as the original README calls it:
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#   bash tools/mim_slurm_test.sh PARTITION REPO CONFIG CHECKPOINT [args...]
# The mmdet 2.x / mmseg 0.x arguments of the original README (--eval segm,
# --eval pq, --eval mIoU, --eval-options, --format-only, --cfg-options
# data.test.*) are translated to their 3.x form (mmdet 3.x's test.py rejects
# them) and the translated command is printed before it runs.
# `sh tools/<script>.sh` (the original README's form) runs dash on many
# systems: re-run under bash
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: bash $0 PARTITION REPO CONFIG CHECKPOINT [args...]  (REPO: mmdet|mmseg)" >&2
  exit 2
fi
PARTITION=$1
REPO=$2
CONFIG=$3
CHECKPOINT=$4
case "$REPO" in mmdet|mmseg) ;; *) echo "REPO must be mmdet or mmseg, got '$REPO'" >&2; exit 2 ;; esac
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}

EXTRA=("${@:5}")
if [ ${#EXTRA[@]} -gt 0 ]; then
  TRANSLATED=$("$PYTHON" "$(dirname "$0")/../knet/engine/launch.py" \
    test-args "$CONFIG" "${EXTRA[@]}") || exit $?
  EXTRA=()
  if [ -n "$TRANSLATED" ]; then mapfile -t EXTRA <<< "$TRANSLATED"; fi
fi
CMD=(mim test "$REPO" "$CONFIG"
     --checkpoint "$CHECKPOINT"
     --launcher slurm -G "$GPUS"
     --gpus-per-node "$GPUS_PER_NODE"
     --cpus-per-task "$CPUS_PER_TASK"
     --partition "$PARTITION"
     --srun-args "$SRUN_ARGS"
     "${EXTRA[@]}")
echo "[mim_slurm_test] ${CMD[*]}" >&2
exec "${CMD[@]}"
