# Video K-Net on VIP-Seg with a Swin-B backbone and the 8-epoch schedule
# (lr x0.1 at epoch 7; spec video_knet_spec.md §7.1 #8): the R-50 config
# with the Swin-B backbone (embed 128, depths 2-2-18-2, heads 4-8-16-32,
# window 7, drop path 0.3) and kernel fusion
# (previous_link='update_dynamic_cov', paper "KF") as in the original's
# Swin configs (spec §2.5 b). Nothing is downloaded: the Swin-B weights
# come with --load-from (a COCO panoptic Swin-B K-Net in the original).
_base_ = './video_knet_s3_r50_rpn_vipseg_mask_embed_link_ffn_joint_train.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        embed_dims=128,
        depths=[2, 2, 18, 2],
        num_heads=[4, 8, 16, 32],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.3,
        patch_norm=True,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        convert_weights=True,
        init_cfg=None),
    neck=dict(in_channels=[128, 256, 512, 1024]),
    roi_head=dict(
        mask_head=dict(
            previous_type='ffn', previous_link='update_dynamic_cov')))
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
