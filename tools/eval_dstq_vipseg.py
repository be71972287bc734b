# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""STQ on VIP-Seg.

    python tools/eval_dstq_vipseg.py PRED_DIR VIPSEG_ROOT \
        [--split val] [--protocol official|videoknet] [--json OUT]

Printed scores are percent; --json writes fractions in [0, 1] (atomically).
See --help for the folder layout and options.
"""
import sys

from eval_bootstrap import load

if __name__ == '__main__':
    sys.exit(load('cli').dstq_vipseg_main())
