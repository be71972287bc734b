# Runtime of the semantic K-Net configs (mmseg 1.x scope).
default_scope = 'mmseg'
# registers K-Net's modules; lets `mim train mmseg` / tools/train.py find them
custom_imports = dict(imports=['knet'], allow_failed_imports=False)
# K-Net's Runner: start-up checks (data, class counts, checkpoints), see
# knet/engine/runner.py; every entry point (tools/, mim, launchers) uses it
runner_type = 'KNetRunner'
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
tta_model = dict(type='SegTTAModel')
