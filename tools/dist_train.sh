#!/usr/bin/env bash
# Distributed training with torchrun.
#   bash tools/dist_train.sh CONFIG GPUS [train.py args...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT from the environment.
# Without GPUs the processes train on CPU with the gloo backend.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash $0 CONFIG GPUS [train.py args...]" >&2
  exit 2
fi
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

# mmdet 2.x train arguments (--resume-from, --load-from, --seed, ...) are
# translated to tools/train.py's (knet.engine.launch.translate_train_argv)
EXTRA=("${@:3}")
for arg in "${EXTRA[@]}"; do
  case "$arg" in
    --resume-from|--resume-from=*|--load-from|--load-from=*|--seed|--seed=*|--deterministic|--gpus|--gpus=*|--gpu-ids|--gpu-id|--no-validate)
      TRANSLATED=$("$PYTHON" "$(dirname "$0")/../knet/engine/launch.py" \
        train-args "$CONFIG" "${EXTRA[@]}") || exit $?
      EXTRA=()
      if [ -n "$TRANSLATED" ]; then mapfile -t EXTRA <<< "$TRANSLATED"; fi
      echo "[$(basename "$0")] translated arguments: ${EXTRA[*]}" >&2
      break ;;
  esac
done

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${EXTRA[@]}"
