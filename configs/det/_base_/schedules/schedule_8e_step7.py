# Video K-Net's 8-epoch schedule (Cityscapes-STEP pre-training, the `_8e`
# video configs; spec video_knet_spec.md §7): the K-Net optimiser of
# schedule_1x.py, 1000-iter linear warm-up from 0.001, x0.1 at epoch 7.
_base_ = './schedule_1x.py'
train_cfg = dict(max_epochs=8)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=8,
        by_epoch=True,
        milestones=[7],
        gamma=0.1)
]
