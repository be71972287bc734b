# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""VPQ on VIP-Seg (official: windows of 1, 2, 4, 6, 8 frames).

    python tools/eval_dvpq_vipseg.py PRED_DIR VIPSEG_ROOT \
        [--split val] [--protocol official|videoknet] [--json OUT]

Printed scores are percent; --json writes fractions in [0, 1] (atomically).
See --help for the folder layout and options.
"""
import sys

from eval_bootstrap import load

if __name__ == '__main__':
    sys.exit(load('cli').dvpq_vipseg_main())
