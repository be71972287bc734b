# UPerNet on a plain ResNetV1c-50 (strides 4..32); standard mmseg base.
_base_ = './fcn_r50-d8.py'
model = dict(
    backbone=dict(dilations=(1, 1, 1, 1), strides=(1, 2, 2, 2)),
    decode_head=dict(
        _delete_=True,
        type='UPerHead',
        in_channels=[256, 512, 1024, 2048],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg={{_base_.norm_cfg}},
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
