# Video K-Net (VPS) on the built-in synthetic KITTI-STEP-style sequences;
# CPU, a few minutes. Pairs of frames (key + reference at -2..2), kernel
# linking and the association embedding, scored with STQ and VPQ.
_base_ = [
    './_base_/toy_video_knet_model.py', './_base_/synthetic_step_vps.py',
    './_base_/toy_det_runtime.py'
]
# some linked parameters (the link modules of the first stages, as in the
# original) receive no gradient
find_unused_parameters = True
