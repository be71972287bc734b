#!/usr/bin/env bash
# Distributed training with torchrun.
#   bash tools/dist_train.sh CONFIG GPUS [train.py args...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT from the environment.
# Without GPUs the processes train on CPU with the gloo backend.
# `sh tools/<script>.sh` (the original README's form) runs dash on many
# systems: re-run under bash
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash $0 CONFIG GPUS [train.py args...]" >&2
  exit 2
fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
LAUNCH_PY="$(dirname "$0")/../knet/engine/launch.py"

# the closest existing config for a missing one (README typos), or ""
suggest_config() {
  "$PYTHON" "$LAUNCH_PY" suggest-config "$1" 2>/dev/null || true
}

# Video K-Net's README runs `dist_train.sh JOB_NAME CONFIG GPUS WORK_DIR
# [args]` (the slurm order): print the command in this script's order
if [ ! -f "$1" ] && [[ "$1" != *.py ]] && [[ "$2" == *.py ]] && [ $# -ge 3 ]; then
  FIXED=("$2" "$3")
  REST=("${@:4}")
  if [ ${#REST[@]} -gt 0 ] && [[ "${REST[0]}" != -* ]]; then
    FIXED+=(--work-dir "${REST[0]}")
    REST=("${REST[@]:1}")
  fi
  if [ ! -f "$2" ]; then
    GOOD=$(suggest_config "$2")
    if [ -n "$GOOD" ]; then FIXED[0]=$GOOD; fi
  fi
  {
    echo "error: $0 takes CONFIG GPUS [train.py args...], not JOB_NAME CONFIG GPUS WORK_DIR"
    echo "(JOB_NAME '$1' is a slurm job name; the work dir is --work-dir). Run:"
    printf '  bash %q' "$0"; printf ' %q' "${FIXED[@]}" "${REST[@]}"; echo
  } >&2
  exit 1
fi
CONFIG=$1
GPUS=$2
if [ ! -f "$CONFIG" ]; then
  GOOD=$(suggest_config "$CONFIG")
  {
    echo "error: config file not found: $CONFIG"
    if [ -n "$GOOD" ]; then
      echo "did you mean $GOOD? Run:"
      printf '  bash %q %q' "$0" "$GOOD"; printf ' %q' "${@:2}"; echo
    fi
  } >&2
  exit 1
fi

# mmdet 2.x train arguments (--resume-from, --no-validate, ...) are
# translated by tools/train.py itself
EXTRA=("${@:3}")

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${EXTRA[@]}"
