# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Tiny semantic K-Net and a generated ADE20K-format dataset, for CPU tests.

Reusable outside this folder: ``make_toy_ade20k`` writes the dataset,
``toy_knet_model_cfg`` is a small ResNetV1c-18 + FCN-kernel K-Net and
``toy_runner_cfg`` an mmengine Runner config training it on CPU
(``Runner.from_cfg(toy_runner_cfg(...)).train()``).
"""
import os
import os.path as osp
from typing import Optional

import numpy as np
from mmengine.config import Config
from PIL import Image

#: colours of classes 1..K in the generated images (class 0 = ignore = grey)
_COLOURS = np.array([[220, 40, 40], [40, 200, 40], [40, 60, 220],
                     [230, 220, 40], [200, 40, 220], [40, 220, 220],
                     [250, 150, 40], [120, 70, 20]])

IMG_NORM = dict(
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True)


def make_toy_ade20k(root: str,
                    num_images: int = 4,
                    num_classes: int = 4,
                    size: int = 64,
                    split: str = 'training',
                    seed: int = 0) -> str:
    """Write an ADE20K-style dataset of coloured rectangles.

    Layout: ``root/images/<split>/*.png`` (RGB) and
    ``root/annotations/<split>/*.png`` (uint8 labels: 0 = unlabelled, which
    ``reduce_zero_label`` turns into 255, then 1..num_classes). Each image is
    a background class with a few rectangles of other classes, coloured by
    class plus noise, and an unlabelled border, so it is easy to learn.

    Returns:
        str: ``root``.
    """
    if num_classes > len(_COLOURS):
        raise ValueError(f'at most {len(_COLOURS)} classes')
    rng = np.random.RandomState(seed)
    img_dir = osp.join(root, 'images', split)
    ann_dir = osp.join(root, 'annotations', split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    for i in range(num_images):
        label = np.full((size, size), 1 + i % num_classes, np.uint8)
        for _ in range(3):
            h, w = rng.randint(size // 4, size // 2, size=2)
            y, x = rng.randint(0, size - h), rng.randint(0, size - w)
            label[y:y + h, x:x + w] = rng.randint(1, num_classes + 1)
        label[:2], label[-2:], label[:, :2], label[:, -2:] = 0, 0, 0, 0
        colours = np.concatenate([[[128, 128, 128]], _COLOURS])
        img = colours[label] + rng.randint(-20, 21, size=(size, size, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
            osp.join(img_dir, f'toy_{i:03d}.png'))
        Image.fromarray(label).save(osp.join(ann_dir, f'toy_{i:03d}.png'))
    return root


def toy_knet_model_cfg(num_classes: int = 4,
                       channels: int = 32,
                       updator_channels: int = 16,
                       num_stages: int = 3,
                       crop_size: int = 64) -> dict:
    """A small semantic K-Net: dilated ResNetV1c-18 (16 base channels,
    output stride 8), FCN kernel generate head, ``num_stages`` update stages.

    ``channels = 2 * updator_channels`` reproduces the half-split updator of
    the 512-channel configs at toy size.
    """
    norm_cfg = dict(type='BN', requires_grad=True)
    stage = dict(
        type='KNetKernelUpdateHead',
        num_classes=num_classes,
        num_ffn_fcs=2,
        num_heads=4,
        num_mask_fcs=1,
        num_cls_fcs=0,
        mask_pooling='softmax',
        feedforward_channels=2 * channels,
        in_channels=channels,
        out_channels=channels,
        dropout=0.0,
        conv_kernel_size=1,
        feat_transform_cfg=dict(conv_cfg=dict(type='Conv2d'), act_cfg=None),
        kernel_updator_cfg=dict(
            type='KNetKernelUpdator',
            in_channels=updator_channels,
            feat_channels=updator_channels,
            out_channels=updator_channels))
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            pad_val=0,
            seg_pad_val=255,
            size=(crop_size, crop_size),
            **IMG_NORM),
        backbone=dict(
            type='ResNetV1c',
            depth=18,
            base_channels=16,
            stem_channels=16,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            dilations=(1, 1, 2, 4),
            strides=(1, 2, 1, 1),
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch',
            contract_dilation=True,
            init_cfg=None),
        decode_head=dict(
            type='KNetIterativeDecodeHead',
            num_stages=num_stages,
            kernel_update_head=[dict(stage) for _ in range(num_stages)],
            kernel_generate_head=dict(
                type='FCNHead',
                in_channels=128,
                in_index=3,
                channels=channels,
                num_convs=1,
                concat_input=True,
                dropout_ratio=0.1,
                num_classes=num_classes,
                norm_cfg=norm_cfg,
                align_corners=False,
                loss_decode=dict(
                    type='CrossEntropyLoss',
                    use_sigmoid=False,
                    loss_weight=1.0))),
        auxiliary_head=dict(
            type='FCNHead',
            in_channels=64,
            in_index=2,
            channels=16,
            num_convs=1,
            concat_input=False,
            dropout_ratio=0.1,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(
                type='CrossEntropyLoss', use_sigmoid=False,
                loss_weight=0.4)),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def toy_runner_cfg(data_root: str,
                   work_dir: str,
                   max_iters: int = 20,
                   lr: float = 1e-3,
                   batch_size: int = 2,
                   model: Optional[dict] = None) -> Config:
    """Config for ``mmengine.runner.Runner.from_cfg`` training a toy K-Net
    on CPU (no validation, no checkpoints, AdamW with grad clip 1)."""
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', reduce_zero_label=True),
        dict(type='PackSegInputs')
    ]
    return Config(dict(
        model=model or toy_knet_model_cfg(),
        work_dir=work_dir,
        train_dataloader=dict(
            batch_size=batch_size,
            num_workers=0,
            sampler=dict(type='InfiniteSampler', shuffle=True),
            dataset=dict(
                type='ADE20KDataset',
                data_root=data_root,
                img_suffix='.png',
                data_prefix=dict(
                    img_path='images/training',
                    seg_map_path='annotations/training'),
                pipeline=pipeline)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(
            type='OptimWrapper',
            optimizer=dict(type='AdamW', lr=lr, weight_decay=0.0005),
            clip_grad=dict(max_norm=1, norm_type=2)),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(
                type='LoggerHook', interval=5, log_metric_by_epoch=False),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(
                type='CheckpointHook',
                by_epoch=False,
                interval=10**9,
                save_last=False)),
        log_processor=dict(by_epoch=False, window_size=1),
        env_cfg=dict(
            cudnn_benchmark=False,
            mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
            dist_cfg=dict(backend='gloo')),
        randomness=dict(seed=0),
        default_scope='mmseg'))
