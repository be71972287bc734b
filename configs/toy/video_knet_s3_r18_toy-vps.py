# Video K-Net (VPS) on the built-in synthetic KITTI-STEP-style sequences;
# CPU, about 24 minutes. Pairs of frames (key + reference at -2..2), kernel
# linking and the association embedding, scored with STQ and VPQ.
_base_ = [
    './_base_/toy_video_knet_model.py', './_base_/synthetic_step_vps.py',
    './_base_/toy_det_runtime.py'
]
# the link modules of the first stages receive no gradient (as in the
# original, only the last stage links)
find_unused_parameters = True

# boxes for the tracker's duplicate removal from the masks themselves: the
# semantic filter of the original (masks AND the kernel head's thing pixels)
# needs a well-trained semantic map; early on it leaves most masks empty,
# their placeholder boxes all overlap and the tracker drops them as
# duplicates
model = dict(semantic_filter=False)

# test frames upscaled 1.25x (128x256 -> 160x320): the things are small
# (18-43 px) for the stride-8 mask features. Annotations are loaded after
# the resize, so scores are computed at the original size. Synthetic val
# STQ at 1x / 1.25x / 1.5x / 1.75x after 1600 iterations: 0.621 / 0.624 /
# 0.623 / 0.632 (seed 0), 0.599 / 0.614 / 0.595 / 0.582 (seed 1); after
# 800 iterations (seed 0): 0.504 / 0.531 / 0.555 / -.
test_pipeline = [
    dict(
        type='TransformBroadcaster',
        transforms=[
            dict(type='LoadImageFromFile',
                 backend_args={{_base_.backend_args}}),
            dict(type='Resize', scale_factor=1.25, keep_ratio=True),
            dict(type='LoadSTEPPanopticAnnotations',
                 num_classes={{_base_.data_num_classes}},
                 thing_ids={{_base_.thing_ids}},
                 with_panoptic_gt=True),
        ]),
    dict(type='PackVideoSegInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 1600
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=1e-5,
         by_epoch=False, begin=0, end=max_iters),
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
