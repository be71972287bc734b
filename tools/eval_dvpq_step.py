# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""VPQ (windows of 1-4 frames) of KITTI-STEP style predictions.

    python tools/eval_dvpq_step.py PRED_DIR GT_DIR [--nproc N] [--json OUT] \
        [--protocol official|videoknet]

Printed scores are percent; --json writes fractions in [0, 1] (atomically).
See --help for the folder layout and options.
"""
import sys

from eval_bootstrap import load

if __name__ == '__main__':
    sys.exit(load('cli').dvpq_step_main())
