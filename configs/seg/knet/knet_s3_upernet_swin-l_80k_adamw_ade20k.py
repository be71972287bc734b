# UPerNet K-Net on mmseg's Swin-L (window 7, ImageNet-22k 224 weights).
_base_ = './knet_s3_upernet_swin-t_80k_adamw_ade20k.py'
model = dict(
    pretrained='https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_large_patch4_window7_224_22k_20220308-d5bdebaf.pth',  # noqa
    backbone=dict(
        embed_dims=192,
        depths=[2, 2, 18, 2],
        num_heads=[6, 12, 24, 48],
        drop_path_rate=0.3),
    decode_head=dict(
        kernel_generate_head=dict(in_channels=[192, 384, 768, 1536])),
    auxiliary_head=dict(in_channels=768))
