# Video K-Net's 12-epoch schedule (KITTI-STEP / VIP-Seg video configs;
# spec video_knet_spec.md §7): the K-Net optimiser of schedule_1x.py,
# 1000-iter linear warm-up from 0.001, x0.1 at epochs 9 and 11.
_base_ = './schedule_1x.py'
train_cfg = dict(max_epochs=12)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=12,
        by_epoch=True,
        milestones=[9, 11],
        gamma=0.1)
]
