# Instance K-Net on the built-in synthetic data: the toy panoptic model
# without stuff kernels or rank loss.
_base_ = [
    './_base_/toy_knet_model.py', './_base_/synthetic_instance.py',
    './_base_/toy_det_runtime.py'
]
model = dict(
    # the synthetic things are small (18-43 px): kernels work on stride-4
    # features (fusion FPN without downsampling) with targets at stride 2
    mask_assign_stride=2,
    num_stuff_classes=0,
    data_preprocessor=dict(pad_seg=False),
    rpn_head=dict(
        num_classes=6, num_stuff_classes=0, cat_stuff_mask=False,
        loss_rank=None, localization_fpn=dict(upsample_times=3)),
    roi_head=dict(
        num_stuff_classes=0,
        do_panoptic=False,
        mask_head=dict(num_classes=6, num_stuff_classes=0, loss_rank=None)),
    # mask_score: rank instances by class x mask confidence (+3 AP here;
    # off in the original K-Net configs)
    test_cfg=dict(rcnn=dict(_delete_=True, max_per_img=30, mask_thr=0.5,
                            mask_score=True)))

# things alone learn more slowly than the panoptic model: 1200 iterations
max_iters = 1200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=1e-5,
         by_epoch=False, begin=0, end=max_iters),
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
