# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Small synthetic datasets generated once per test session (a few seconds)."""
from pathlib import Path

import pytest

from knet.datasets.synthetic import generate_all

# : Parameters small enough for unit tests, large enough that crowd / void /
# late tracks occur.
SMALL = dict(
    coco=dict(num_train=24, num_val=4),
    panoptic=dict(num_train=24, num_val=4),
    ade=dict(num_train=8, num_val=2),
    step=dict(num_train=3, num_val=1, num_frames=6),
    ytvis=dict(num_train=3, num_val=2, num_frames=6),
    vspw=dict(num_train=2, num_val=1, num_frames=4))


def generate_small(out_dir: Path, seed: int = 0, tasks=tuple(SMALL)) -> dict:
    """Generate the small variant of each task into ``out_dir``."""
    done = {}
    for task in tasks:
        done.update(
            generate_all(
                out_dir,
                seed=seed,
                tasks=[task],
                progress=False,
                **SMALL[task]))
    return done


@pytest.fixture(scope='session')
def small_generator():
    """The ``generate_small`` helper, for tests that need private copies."""
    return generate_small


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory) -> Path:
    """Root folder holding every synthetic task (seed 0, small sizes)."""
    root = tmp_path_factory.mktemp('synthetic')
    generate_small(root)
    return root
