# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Evaluation protocols of the video metrics: ``official`` and ``videoknet``.

The scoring cores (:mod:`.stq`, :mod:`.vpq`) are shared; a protocol only
fixes the rules around them:

================================  ==================  ====================
rule                              ``official``        ``videoknet``
================================  ==================  ====================
STQ: GT-void pixels               scored (whole       removed before
                                  frames, deeplab2    scoring (Video
                                  ``STQuality``)      K-Net's scripts)
STQ VIP-Seg: first segment of a   crowd if it is a    ordinary segment
video (``eval_stq_vspw.py``       thing (the official (instances numbered
numbers segments from 0)          numbering)          from 1)
VPQ: sequence shorter than k      contributes nothing scored as one window
                                                      of all its frames
VPQ VIP-Seg windows               1, 2, 4, 6, 8       1, 2, 4, 6
VPQ KITTI-STEP windows            1, 2, 3, 4          1, 2, 3, 4
================================  ==================  ====================

``official`` is the default everywhere (CLI, mmengine metrics, library).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    'OFFICIAL', 'VIDEOKNET', 'PROTOCOLS', 'ProtocolRules', 'get_protocol',
    'check_windows'
]

OFFICIAL = 'official'
VIDEOKNET = 'videoknet'
PROTOCOLS = (OFFICIAL, VIDEOKNET)


@dataclass(frozen=True)
class ProtocolRules:
    """What a protocol changes around the STQ / VPQ cores."""
    name: str
    drop_gt_void: bool  # STQ: remove GT-void pixels before scoring
    zero_numbered_crowd: bool  # STQ VIP-Seg: first segment numbered 0
    clip_short_sequences: bool  # VPQ: short sequence = one shorter window
    vipseg_windows: tuple[int, ...]
    step_windows: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly description (written into every result file)."""
        out = asdict(self)
        out['vipseg_windows'] = list(self.vipseg_windows)
        out['step_windows'] = list(self.step_windows)
        return out


_RULES = {
    OFFICIAL:
    ProtocolRules(OFFICIAL, drop_gt_void=False, zero_numbered_crowd=True,
                  clip_short_sequences=False,
                  vipseg_windows=(1, 2, 4, 6, 8),
                  step_windows=(1, 2, 3, 4)),
    VIDEOKNET:
    ProtocolRules(VIDEOKNET, drop_gt_void=True, zero_numbered_crowd=False,
                  clip_short_sequences=True, vipseg_windows=(1, 2, 4, 6),
                  step_windows=(1, 2, 3, 4)),
}


def get_protocol(name: str) -> ProtocolRules:
    """Rules of protocol ``name`` (``'official'`` or ``'videoknet'``).

    Raises:
        ValueError: Unknown protocol name.
    """
    if isinstance(name, ProtocolRules):
        return name
    rules = _RULES.get(str(name).lower())
    if rules is None:
        raise ValueError(f'Unknown video evaluation protocol {name!r}; '
                         f'choose one of {list(PROTOCOLS)}')
    return rules


def check_windows(windows: Any) -> list[int]:
    """Validated window sizes: a non-empty list of distinct integers >= 1.

    Raises:
        ValueError: Empty, non-integer, non-positive or repeated sizes.
    """
    try:
        values = [int(k) for k in windows]
        exact = all(float(k) == int(k) for k in windows)
    except (TypeError, ValueError):
        values, exact = [], False
    if not values or not exact or min(values) < 1:
        raise ValueError(f'VPQ window sizes must be one or more integers '
                         f'>= 1 (frames per window), got {windows!r}; e.g. '
                         f'--windows 1 2 3 4')
    if len(set(values)) != len(values):
        raise ValueError(f'VPQ window sizes must be distinct, got '
                         f'{windows!r}')
    return values
