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
OUT_HINT=${OUT:-work_dirs/step_test}
if [ $# -lt 2 ]; then
  echo "usage: bash $0 CONFIG CHECKPOINT GPUS [test_step.py args...]" >&2
  exit 2
fi
# A missing config (the original README's `knet_cityscapes_ste` typo) is
# replaced by the closest existing one in the printed command; that image
# K-Net config becomes the video config the VPS test needs.
CONFIG_FIX=$1
if [ ! -f "$1" ]; then
  GOOD=$("$PYTHON" "$(dirname "$0")/../knet/engine/launch.py" suggest-config "$1" 2>/dev/null || true)
  if [ -n "$GOOD" ]; then
    echo "error: config file not found: $1; did you mean $GOOD?" >&2
    case "$GOOD" in
      *video_knet*) CONFIG_FIX=$GOOD ;;
      *) echo "($GOOD is the image K-Net it is pre-trained with; the video panoptic test runs a video config)" >&2
         CONFIG_FIX=$KITTI_VPS ;;
    esac
  fi
fi
# the original README's forms: `dist_step_test.sh CONFIG CKPT` and
# `dist_step_test.sh CONFIG CKPT --show-dir OUT` (no GPU count)
if [ $# -eq 2 ] || ! [[ "$3" =~ ^[0-9]+$ ]]; then
  REST=("${@:3}")
  if [ ${#REST[@]} -eq 0 ]; then REST=(--show-dir "$OUT_HINT"); fi
  {
    echo "error: $0 takes CONFIG CHECKPOINT GPUS [test_step.py args...]; the GPU count (the third argument) is missing. Run:"
    printf '  bash %q %q %q 1' "$0" "$CONFIG_FIX" "$2"; printf ' %q' "${REST[@]}"; echo
  } >&2
  exit 2
fi
if [ "$CONFIG_FIX" != "$1" ] || [ ! -f "$1" ]; then
  {
    echo "error: config file not found: $1"
    if [ "$CONFIG_FIX" != "$1" ]; then
      printf 'Run:\n  bash %q %q' "$0" "$CONFIG_FIX"; printf ' %q' "${@:2}"; echo
    fi
  } >&2
  exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
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
