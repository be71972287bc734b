# Video K-Net (VPS) on the built-in synthetic KITTI-STEP-style sequences;
# CPU, about 20 minutes. Pairs of frames (key + reference at -2..2), kernel
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

max_iters = 800
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=1e-5,
         by_epoch=False, begin=0, end=max_iters),
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
