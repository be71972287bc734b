# K-Net det schedule: AdamW 1e-4, wd 0.05, backbone lr x0.25, clip 1,
# 1000-iter linear warm-up, x0.1 at epochs 8 and 11, 12 epochs.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=12,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1)
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.25)}),
    clip_grad=dict(max_norm=1, norm_type=2))

# The originals trained on 8 GPUs x 2 images.
auto_scale_lr = dict(enable=False, base_batch_size=16)
