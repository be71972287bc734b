#!/usr/bin/env bash
# Distributed video panoptic test (tools/test_step.py) with torchrun: each
# process runs whole sequences in order (TrackImgSampler) and writes their
# files; rank 0 scores the written files at the end.
#   bash tools/dist_step_test.sh CONFIG CHECKPOINT GPUS [test_step.py args...]
#   e.g. bash tools/dist_step_test.sh CONFIG CKPT 1 --show-dir OUT
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT from the environment.
# `sh tools/<script>.sh` (the original README's form) runs dash on many
# systems: re-run under bash
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
PYTHON=${PYTHON:-python}
KITTI_VPS=configs/det/video_knet_kitti_step/video_knet_s3_r50_rpn_1x_kitti_step_sigmoid_stride2_mask_embed_link_ffn_joint_train.py
# the original README's forms: `dist_step_test.sh CONFIG CKPT` (no GPU
# count, no output folder) and config typos: print the command to run
if [ $# -ge 1 ] && [ ! -f "$1" ]; then
  GOOD=$("$PYTHON" "$(dirname "$0")/../knet/engine/launch.py" suggest-config "$1" 2>/dev/null || true)
  {
    echo "error: config file not found: $1"
    if [ -n "$GOOD" ]; then
      echo "did you mean $GOOD?"
      case "$GOOD" in
        *video_knet*) ;;
        *) echo "(that is the image K-Net it is pre-trained with; the video panoptic test runs a video config)"
           GOOD=$KITTI_VPS;;
      esac
      printf 'Run:\n  bash %q %q %q 1 --show-dir %q\n' "$0" "$GOOD" "${2:-CHECKPOINT}" "${OUT:-work_dirs/step_test}"
    fi
  } >&2
  exit 2
fi
if [ $# -eq 2 ]; then
  {
    echo "error: $0 takes CONFIG CHECKPOINT GPUS [test_step.py args...]; the GPU count and --show-dir are missing. Run:"
    printf '  bash %q %q %q 1 --show-dir %q\n' "$0" "$1" "$2" "${OUT:-work_dirs/step_test}"
  } >&2
  exit 2
fi
if [ $# -lt 3 ]; then
  echo "usage: bash $0 CONFIG CHECKPOINT GPUS [test_step.py args...]" >&2
  exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
if ! [[ "$GPUS" =~ ^[0-9]+$ ]]; then
  # the original README's form: tools/dist_step_test.sh CONFIG CKPT --show-dir OUT
  printf 'error: GPUS (the third argument) must be a number of processes, got "%s".\n' "$GPUS" >&2
  printf 'The GPU count comes before the test_step.py options; run:\n  bash %s %q %q 1' "$0" "$CONFIG" "$CHECKPOINT" >&2
  printf ' %q' "${@:3}" >&2
  printf '\n' >&2
  exit 2
fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/test_step.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
