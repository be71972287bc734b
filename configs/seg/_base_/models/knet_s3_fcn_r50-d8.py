# K-Net, 3 update stages, on an FCN kernel generate head (dilated
# ResNetV1c-50): 150 kernels of 512-d (conv_seg.weight), refined by
# KNetKernelUpdateHead stages with soft (softmax) pooling and no classifier.
# The 256-d kernel updator acts on the two 256-d halves of every kernel.
_base_ = './fcn_r50-d8.py'
norm_cfg = dict(type='SyncBN', requires_grad=True)
num_stages = 3
conv_kernel_size = 1
model = dict(
    data_preprocessor=dict(size=(512, 512)),
    decode_head=dict(
        _delete_=True,
        type='KNetIterativeDecodeHead',
        num_stages=num_stages,
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
                in_channels=512,
                out_channels=512,
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
            type='FCNHead',
            in_channels=2048,
            in_index=3,
            channels=512,
            num_convs=2,
            concat_input=True,
            dropout_ratio=0.1,
            num_classes=150,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))),
    auxiliary_head=dict(num_classes=150))
