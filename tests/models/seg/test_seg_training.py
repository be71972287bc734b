# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""A tiny semantic K-Net trains on a generated ADE20K-format dataset through
mmengine's Runner on CPU (loss goes down), then predicts."""
import numpy as np
import pytest
import torch
from mmengine.runner import Runner

import knet.models.seg  # noqa: F401  (registers the seg heads)

try:  # run from the repository root (python -m pytest)
    from tests.models.seg.seg_toy import (make_toy_ade20k, toy_knet_model_cfg,
                                          toy_runner_cfg)
except ImportError:  # pytest's rootdir-less (prepend) import mode
    from seg_toy import make_toy_ade20k, toy_knet_model_cfg, toy_runner_cfg

NUM_CLASSES = 4


# one intra-op thread unless KNET_TEST_THREADS says otherwise (conftest.py)
pytestmark = pytest.mark.usefixtures('single_thread')


def test_toy_semantic_knet_trains_and_predicts(tmp_path):
    data_root = make_toy_ade20k(
        str(tmp_path / 'ade'), num_images=4, num_classes=NUM_CLASSES)
    cfg = toy_runner_cfg(
        data_root,
        str(tmp_path / 'work'),
        max_iters=40,
        lr=1e-3,
        model=toy_knet_model_cfg(num_classes=NUM_CLASSES))
    runner = Runner.from_cfg(cfg)
    runner.train()

    history = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(history) == 40 and np.isfinite(history).all()
    first, last = history[:5].mean(), history[-5:].mean()
    assert last < 0.9 * first, (first, last)
    assert history[-1] < history[0]
    for i in range(4):
        assert f'train/decode.loss_ce.s{i}' in runner.message_hub.log_scalars
    assert 'train/aux.loss_ce' in runner.message_hub.log_scalars

    model = runner.model.eval()
    batch = next(iter(runner.train_dataloader))
    with torch.no_grad():
        results = model.test_step(batch)
    assert len(results) == 2
    for result in results:
        pred = result.pred_sem_seg.data
        assert pred.shape == (1, 64, 64)
        assert 0 <= pred.min() and pred.max() < NUM_CLASSES
        assert result.seg_logits.data.shape == (NUM_CLASSES, 64, 64)
