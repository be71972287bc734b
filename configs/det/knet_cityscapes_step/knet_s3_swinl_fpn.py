# Cityscapes-STEP K-Net with a Swin-L backbone (window 7, ImageNet-22k
# 224), 1 image per GPU; otherwise knet_s3_r50_fpn.py (spec
# video_knet_spec.md §1.1, §7.1 #1). Download the backbone weights to
# pretrain/swin_large_patch4_window7_224_22k.pth (nothing is downloaded at
# run time), or set model.backbone.init_cfg=None when --load-from brings
# them (e.g. from the COCO Swin-L K-Net of
# configs/det/knet/knet_s3_swin-l_fpn_ms-3x_16x2_coco-panoptic.py).
_base_ = './knet_s3_swinb_fpn.py'
pretrained = 'pretrain/swin_large_patch4_window7_224_22k.pth'
model = dict(
    backbone=dict(
        embed_dims=192,
        num_heads=[6, 12, 24, 48],
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[192, 384, 768, 1536]))
