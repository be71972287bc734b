#!/usr/bin/env bash
# Video panoptic test (tools/test_step.py) on a slurm cluster, one task per
# GPU; whole sequences per task, rank 0 scores the written files.
#   [GPUS=1] [GPUS_PER_NODE=1] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#   bash tools/slurm_test_step.sh PARTITION JOB_NAME CONFIG CHECKPOINT \
#       [test_step.py args, e.g. --show-dir OUT]
# `sh tools/<script>.sh` (the original README's form) runs dash on many
# systems: re-run under bash
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: bash $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test_step.py args...]" >&2
  exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-1}
GPUS_PER_NODE=${GPUS_PER_NODE:-1}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
GRES_ARGS=()
if [ "${GPUS_PER_NODE}" -gt 0 ]; then GRES_ARGS=(--gres="gpu:${GPUS_PER_NODE}"); fi

# shellcheck disable=SC2086
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    "${GRES_ARGS[@]}" \
    --ntasks="${GPUS}" \
    --ntasks-per-node="$(( GPUS_PER_NODE > 0 ? GPUS_PER_NODE : GPUS ))" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$(dirname "$0")/test_step.py" "${CONFIG}" "${CHECKPOINT}" \
    --launcher="slurm" "${@:5}"
