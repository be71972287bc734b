#!/usr/bin/env bash
# Training on slurm through OpenMIM, as the original README calls it:
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#   bash tools/mim_slurm_train.sh PARTITION REPO CONFIG WORK_DIR [args...]
# REPO is mmdet (instance / panoptic) or mmseg (semantic). The configs
# import the plugin through custom_imports, so no PYTHONPATH is needed.
# WORK_DIR becomes --work-dir (`mim train mmdet CONFIG WORK_DIR` itself is
# rejected by mmdet 3.x); mmdet 2.x arguments (--resume-from, --load-from,
# --seed, --deterministic, --no-validate, --cfg-options data.*) are
# translated and the command is printed before it runs.
# `sh tools/<script>.sh` (the original README's form) runs dash on many
# systems: re-run under bash
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: bash $0 PARTITION REPO CONFIG WORK_DIR [args...]  (REPO: mmdet|mmseg)" >&2
  exit 2
fi
PARTITION=$1
REPO=$2
CONFIG=$3
WORK_DIR=$4
case "$REPO" in mmdet|mmseg) ;; *) echo "REPO must be mmdet or mmseg, got '$REPO'" >&2; exit 2 ;; esac
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}

EXTRA=("${@:5}")
if [ ${#EXTRA[@]} -gt 0 ]; then
  TRANSLATED=$("$PYTHON" "$(dirname "$0")/../knet/engine/launch.py" \
    train-args "$CONFIG" "${EXTRA[@]}") || exit $?
  EXTRA=()
  if [ -n "$TRANSLATED" ]; then mapfile -t EXTRA <<< "$TRANSLATED"; fi
fi
CMD=(mim train "$REPO" "$CONFIG"
     --launcher slurm -G "$GPUS"
     --gpus-per-node "$GPUS_PER_NODE"
     --cpus-per-task "$CPUS_PER_TASK"
     --partition "$PARTITION"
     --work-dir "$WORK_DIR"
     --srun-args "$SRUN_ARGS"
     "${EXTRA[@]}")
echo "[mim_slurm_train] ${CMD[*]}" >&2
exec "${CMD[@]}"
