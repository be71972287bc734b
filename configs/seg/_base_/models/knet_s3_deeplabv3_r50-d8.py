# K-Net, 3 stages, on a DeepLabV3 (ASPP) kernel generate head (512-d
# kernels).
_base_ = './knet_s3_fcn_r50-d8.py'
model = dict(
    decode_head=dict(
        kernel_generate_head=dict(
            _delete_=True,
            type='ASPPHead',
            in_channels=2048,
            in_index=3,
            channels=512,
            dilations=(1, 12, 24, 36),
            dropout_ratio=0.1,
            num_classes=150,
            norm_cfg={{_base_.norm_cfg}},
            align_corners=False,
            loss_decode=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))))
