# Cityscapes-STEP K-Net with a Swin-B backbone (window 7, ImageNet-22k
# 224), 1 image per GPU; otherwise knet_s3_r50_fpn.py (spec
# video_knet_spec.md §1.1, §7.1 #1). Download the backbone weights to
# pretrain/swin_base_patch4_window7_224_22k.pth (nothing is downloaded at
# run time), or set model.backbone.init_cfg=None when --load-from brings
# them (e.g. from a COCO Swin-B K-Net).
_base_ = './knet_s3_r50_fpn.py'
pretrained = 'pretrain/swin_base_patch4_window7_224_22k.pth'
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
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
train_dataloader = dict(batch_size=1)
auto_scale_lr = dict(enable=False, base_batch_size=8)
