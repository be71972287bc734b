# The KITTI-STEP R-50 Video K-Net with the 8-epoch schedule, lr x0.1 at
# epoch 7 (spec video_knet_spec.md §7.1 #2), over the pairs repeated twice
# (see the base config for why): 16 passes, lr x0.1 after pass 14.
_base_ = ('./video_knet_s3_r50_rpn_1x_kitti_step_sigmoid_stride2_mask_'
          'embed_link_ffn_joint_train.py')
train_cfg = dict(max_epochs=16)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=16,
        by_epoch=True,
        milestones=[14],
        gamma=0.1)
]
