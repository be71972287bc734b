# K-Net instance segmentation: the panoptic model without stuff kernels,
# stuff classes or rank loss (spec knet_image_spec.md §3.1).
_base_ = './knet_s3_r50_fpn_panoptic.py'

num_stages = 3
num_classes = 80

model = dict(
    num_stuff_classes=0,
    data_preprocessor=dict(pad_seg=False),
    rpn_head=dict(
        num_classes=num_classes,
        num_stuff_classes=0,
        cat_stuff_mask=False,
        loss_rank=None),
    roi_head=dict(
        num_stuff_classes=0,
        do_panoptic=False,
        mask_head=[
            dict(
                type='KNetKernelUpdateHead',
                num_classes=num_classes,
                num_thing_classes=80,
                num_stuff_classes=0,
                num_ffn_fcs=2,
                num_heads=8,
                num_cls_fcs=1,
                num_mask_fcs=1,
                feedforward_channels=2048,
                in_channels=256,
                out_channels=256,
                dropout=0.0,
                conv_kernel_size=1,
                mask_pooling='sigmoid',
                hard_mask_thr=0.5,
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
                    norm_cfg=dict(type='LN')),
                loss_cls=dict(
                    type='FocalLoss',
                    use_sigmoid=True,
                    gamma=2.0,
                    alpha=0.25,
                    loss_weight=2.0),
                loss_mask=dict(
                    type='CrossEntropyLoss', use_sigmoid=True,
                    loss_weight=1.0),
                loss_dice=dict(type='DiceLoss', loss_weight=4.0))
            for _ in range(num_stages)
        ]),
    test_cfg=dict(rcnn=dict(_delete_=True, max_per_img=100, mask_thr=0.5)))
