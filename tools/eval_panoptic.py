# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""COCO panoptic quality (All/Things/Stuff PQ, SQ, RQ), same numbers as
panopticapi.

    python tools/eval_panoptic.py --gt-json GT.json --pred-json PRED.json \
        [--gt-dir GT_PNGS] [--pred-dir PRED_PNGS] [--nproc N] [--json OUT]

Printed scores are percent; --json writes fractions in [0, 1] (atomically).
See --help for the folder layout and options.
"""
import sys

from eval_bootstrap import load

if __name__ == '__main__':
    sys.exit(load('cli').panoptic_main())
