# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Flush denormal floats to zero on CPU-only machines.

Early in training AdamW's second moments and many gradients are tiny; as
denormals they make x86 arithmetic an order of magnitude slower (toy K-Net
on 2 cores: 12 s -> 0.8 s per step). The mode is per thread and inherited by
threads created later, so it is set on ``import knet``, before torch starts
its worker threads. GPU machines are left alone.
"""
import torch


def flush_denormals_on_cpu() -> bool:
    """Enable flush-to-zero when CUDA is unavailable; returns whether set."""
    if torch.cuda.is_available():
        return False
    return bool(torch.set_flush_denormal(True))
