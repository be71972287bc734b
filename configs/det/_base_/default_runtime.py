# mmdet 3.x runtime for K-Net; `custom_imports` registers the plugin, so
# `mim train mmdet CFG` and `python tools/train.py CFG` need no PYTHONPATH.
default_scope = 'mmdet'
custom_imports = dict(imports=['knet'], allow_failed_imports=False)
# K-Net's Runner: start-up checks (data, class counts, checkpoints), see
# knet/engine/runner.py; every entry point (tools/, mim, launchers) uses it
runner_type = 'KNetRunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='KNetCheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # mmdet's hook; --show-dir DIR paints every test image into DIR
    # (knet/visualization/hooks.py)
    visualization=dict(type='KNetDetVisualizationHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
# mmdet's visualizer, also drawing panoptic maps without any segment
visualizer = dict(
    type='KNetDetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False
