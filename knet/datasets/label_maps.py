# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Dataset <-> model label spaces of the video panoptic data (spec §2.4).

Dataset space: the class ids of the dataset files (KITTI-STEP trainIds,
VIP-Seg 0-based class ids, synthetic STEP ids), ``void`` = 255. Model
space (inside the network and in its predictions): the thing classes first,
``0..Th-1`` in ``thing_ids`` order, then the stuff classes in ascending
dataset id, ``Th..Th+S-1``; void stays 255. :class:`ModelLabelMap` holds
both look-up tables, so the loaders (dataset -> model) and the file
writers (model -> dataset) use one definition.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Void / unlabelled class value in both spaces.
VOID = 255


def dataset_to_model_lut(num_classes: int,
                         thing_ids: Sequence[int],
                         void: int = VOID) -> np.ndarray:
    """256-entry LUT dataset id -> model label (unknown values -> ``void``).

    Stuff id ``i`` becomes ``i - #{thing ids < i} + Th`` (spec §2.4,
    ``label_shift = Th``); thing ``thing_ids[k]`` becomes ``k``.
    """
    thing_ids = [int(t) for t in thing_ids]
    if not 0 < num_classes <= void:
        raise ValueError(f'num_classes={num_classes} must be in [1, {void}] '
                         f'(void is {void})')
    if len(set(thing_ids)) != len(thing_ids) or any(
            not 0 <= t < num_classes for t in thing_ids):
        raise ValueError(f'thing_ids {thing_ids} must be distinct class ids '
                         f'in [0, {num_classes})')
    lut = np.full(256, void, np.int64)
    lut[thing_ids] = np.arange(len(thing_ids))
    stuff = np.setdiff1d(np.arange(num_classes), thing_ids)
    lut[stuff] = np.arange(len(stuff)) + len(thing_ids)
    return lut


def model_to_dataset_lut(num_classes: int,
                         thing_ids: Sequence[int],
                         void: int = VOID) -> np.ndarray:
    """256-entry LUT model label -> dataset id (inverse of the above)."""
    lut = dataset_to_model_lut(num_classes, thing_ids, void)
    inverse = np.full(256, void, np.int64)
    ids = np.arange(num_classes)
    inverse[lut[ids]] = ids
    return inverse


class ModelLabelMap:
    """Both directions between a dataset's class ids and model labels.

    Args:
        num_classes: classes of the dataset (ids ``0..num_classes-1``).
        thing_ids: dataset ids of the thing classes, in thing-label order.
        void: the void value (kept as is in both directions).
    """

    def __init__(self, num_classes: int, thing_ids: Sequence[int],
                 void: int = VOID) -> None:
        self.num_classes = int(num_classes)
        self.thing_ids = tuple(int(t) for t in thing_ids)
        self.void = int(void)
        self.to_model_lut = dataset_to_model_lut(self.num_classes,
                                                 self.thing_ids, self.void)
        self.to_dataset_lut = model_to_dataset_lut(self.num_classes,
                                                   self.thing_ids, self.void)

    @property
    def num_things(self) -> int:
        """Number of thing classes (model labels ``0..num_things-1``)."""
        return len(self.thing_ids)

    @staticmethod
    def _apply(lut: np.ndarray, arr: np.ndarray, what: str) -> np.ndarray:
        """Look ``arr`` up in ``lut``; values outside 0..255 are refused."""
        arr = np.asarray(arr)
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(f'{what}: class values must lie in [0, 255]; '
                             f'got {int(arr.min())}..{int(arr.max())}')
        return lut[arr.astype(np.int64)]

    def to_model(self, arr: np.ndarray) -> np.ndarray:
        """Dataset class ids -> model labels (int64, void/unknown -> void)."""
        return self._apply(self.to_model_lut, arr, 'ModelLabelMap.to_model')

    def to_dataset(self, arr: np.ndarray) -> np.ndarray:
        """Model labels -> dataset class ids (int64, void/unknown -> void)."""
        return self._apply(self.to_dataset_lut, arr,
                           'ModelLabelMap.to_dataset')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'thing_ids={self.thing_ids}, void={self.void})')
