#!/usr/bin/env python
# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Convert a released K-Net checkpoint (det or seg, original repo or mmseg)
into a checkpoint of this project, validating every key and shape.

    python tools/convert_checkpoint.py SRC DST [--config CFG]
"""
import argparse
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='checkpoint to convert (.pth)')
    parser.add_argument('dst', help='output checkpoint path')
    parser.add_argument(
        '--config',
        help='config of the target model (inferred from the weights of '
        'released K-Net models when omitted)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from knet.utils.checkpoint_convert import (CheckpointMismatchError,
                                               convert_checkpoint)
    try:
        config = convert_checkpoint(args.src, args.dst, args.config)
    except (CheckpointMismatchError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'{args.src} -> {args.dst} (validated against {config})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
