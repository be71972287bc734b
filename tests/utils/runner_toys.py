# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""A two-parameter model and dataset for fast Runner checkpoint tests."""
import itertools
from typing import Optional

import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.model import BaseModel
from torch.utils.data import Dataset

_IDS = itertools.count()


class ToyModel(BaseModel):
    """Linear regression; ``extra=True`` adds a layer (another model)."""

    def __init__(self, extra: bool = False):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.extra = nn.Linear(1, 1) if extra else None

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if self.extra is not None:
            out = self.extra(out)
        if mode == 'loss':
            return {'loss': ((out - torch.stack(labels))**2).mean()}
        return out


class ToyDataset(Dataset):
    """Eight samples of y = x0 - x1; metainfo is a ConfigDict as when a
    dataset's ``metainfo`` comes from a config."""

    metainfo = ConfigDict(classes=('a', 'b'))

    def __init__(self, n: int = 8):
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 2, generator=gen)
        self.y = (self.x[:, :1] - self.x[:, 1:])

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=self.y[i])


def runner_kwargs(work_dir: str,
                  by_epoch: bool,
                  total: int,
                  amp: bool = False,
                  extra: bool = False,
                  resume: bool = False,
                  load_from: Optional[str] = None,
                  max_keep_ckpts: int = 1) -> dict:
    """Arguments of ``Runner(...)`` for a tiny run saving every step."""
    train_cfg = dict(by_epoch=True, max_epochs=total) if by_epoch else \
        dict(by_epoch=False, max_iters=total)
    optim = dict(
        type='CPUAmpOptimWrapper' if amp else 'OptimWrapper',
        optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
    return dict(
        model=ToyModel(extra=extra),
        work_dir=work_dir,
        experiment_name=f'toy_ckpt_{next(_IDS)}',
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=4,
            num_workers=0),
        optim_wrapper=optim,
        param_scheduler=dict(type='MultiStepLR', milestones=[2],
                             by_epoch=by_epoch),
        train_cfg=train_cfg,
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='KNetCheckpointHook', interval=1,
                            by_epoch=by_epoch,
                            max_keep_ckpts=max_keep_ckpts)),
        randomness=dict(seed=0),
        resume=resume,
        load_from=load_from,
        default_scope='mmengine')
