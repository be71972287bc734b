# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""STQ of KITTI-STEP style predictions.

    python tools/eval_dstq_step.py PRED_DIR GT_DIR [--nproc N] [--json OUT] \
        [--protocol official|videoknet] [--keep-gt-void]

Printed scores are percent; --json writes fractions in [0, 1] (atomically).
See --help for the folder layout and options.
"""
import sys

from eval_bootstrap import load

if __name__ == '__main__':
    sys.exit(load('cli').dstq_step_main())
