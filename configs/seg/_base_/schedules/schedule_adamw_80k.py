# K-Net seg schedule: AdamW 1e-4 (wd 5e-4), grad clip 1, linear warm-up over
# 1000 iters, x0.1 at iters 60k and 72k, 80k iters, ckpt + mIoU every 8k.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.0005),
    clip_grad=dict(max_norm=1, norm_type=2))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    # begin=0 keeps the milestones absolute (iters 60k / 72k), as in mmcv 1.x
    dict(
        type='MultiStepLR',
        milestones=[60000, 72000],
        gamma=0.1,
        by_epoch=False,
        begin=0,
        end=80000)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=80000, val_interval=8000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='KNetCheckpointHook', by_epoch=False, interval=8000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
