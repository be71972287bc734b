#!/usr/bin/env python
# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Convert a released K-Net checkpoint (det or seg, original repo or mmseg)
or Video K-Net checkpoint (KITTI-STEP / VIP-Seg) into a checkpoint of this
project, validating every key and shape.

    python tools/convert_checkpoint.py SRC DST [--config CFG] [--force]
                                       [--unsafe-load]

The config is inferred from the weights: COCO / Cityscapes-STEP K-Nets by
class count and backbone, Video K-Nets (track_head / embed_fcs /
attention_previous keys) by class count (19 KITTI-STEP, 124 VIP-Seg) and
backbone (R-50, Swin-B); a Swin backbone in the original Video K-Net layout
is renamed to mmdet's. A file that does not fit stops with the list of
missing, unexpected and mis-shaped keys.

DST must differ from SRC; an existing DST is only replaced with --force.
SRC is read with torch's safe loader (plain tensors and containers, plus the
types mmengine checkpoints need); --unsafe-load reads a trusted file that
needs more with full pickle.
"""
import argparse
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 2)[2])
    parser.add_argument('src', help='checkpoint to convert (.pth)')
    parser.add_argument('dst', help='output checkpoint path')
    parser.add_argument(
        '--config',
        help='config of the target model (inferred from the weights of '
        'released K-Net models when omitted)')
    parser.add_argument(
        '--force', action='store_true', help='overwrite an existing DST')
    parser.add_argument(
        '--unsafe-load',
        action='store_true',
        help='load SRC with full pickle (runs code in the file: trusted '
        'files only); same as KNET_UNSAFE_LOAD=1')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from knet.utils.checkpoint_compat import (CorruptCheckpointError,
                                              UnsafeCheckpointError,
                                              enable_unsafe_load)
    from knet.utils.checkpoint_convert import (CheckpointMismatchError,
                                               convert_checkpoint)
    if args.unsafe_load:
        enable_unsafe_load()
    try:
        config = convert_checkpoint(
            args.src, args.dst, args.config, force=args.force)
    except (CheckpointMismatchError, CorruptCheckpointError,
            UnsafeCheckpointError, FileNotFoundError, FileExistsError,
            IsADirectoryError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'{args.src} -> {args.dst} (validated against {config})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
