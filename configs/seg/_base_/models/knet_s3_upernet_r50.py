# K-Net, 3 stages, on a UPerNet kernel generate head (plain ResNetV1c-50):
# 256-d kernels and 256-d update stages, as in the original K-Net.
# (mmseg's released K-Net UPerNet / Swin checkpoints use 512 channels; set
# `channels=512` here and in_channels/out_channels=512 in the stages to load
# them.)
_base_ = './knet_s3_fcn_r50-d8.py'
num_stages = 3
conv_kernel_size = 1
model = dict(
    backbone=dict(dilations=(1, 1, 1, 1), strides=(1, 2, 2, 2)),
    decode_head=dict(
        kernel_update_head=[
            dict(
                type='KNetKernelUpdateHead',
                num_classes=150,
                num_ffn_fcs=2,
                num_heads=8,
                num_mask_fcs=1,
                num_cls_fcs=0,
                mask_pooling='softmax',
                feedforward_channels=2048,
                in_channels=256,
                out_channels=256,
                dropout=0.0,
                conv_kernel_size=conv_kernel_size,
                ffn_act_cfg=dict(type='ReLU', inplace=True),
                with_ffn=True,
                feat_transform_cfg=dict(
                    conv_cfg=dict(type='Conv2d'), act_cfg=None),
                kernel_updator_cfg=dict(
                    type='KNetKernelUpdator',
                    in_channels=256,
                    feat_channels=256,
                    out_channels=256,
                    act_cfg=dict(type='ReLU', inplace=True),
                    norm_cfg=dict(type='LN'))) for _ in range(num_stages)
        ],
        kernel_generate_head=dict(
            _delete_=True,
            type='UPerHead',
            in_channels=[256, 512, 1024, 2048],
            in_index=[0, 1, 2, 3],
            pool_scales=(1, 2, 3, 6),
            channels=256,
            dropout_ratio=0.1,
            num_classes=150,
            norm_cfg={{_base_.norm_cfg}},
            align_corners=False,
            loss_decode=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))))
