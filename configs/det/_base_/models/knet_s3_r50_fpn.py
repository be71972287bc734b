# K-Net instance segmentation: the panoptic model without stuff kernels,
# stuff classes or rank loss (spec knet_image_spec.md §3.1).
_base_ = './knet_s3_r50_fpn_panoptic.py'

model = dict(
    num_stuff_classes=0,
    data_preprocessor=dict(pad_seg=False),
    rpn_head=dict(
        num_classes=80,
        num_stuff_classes=0,
        cat_stuff_mask=False,
        loss_rank=None),
    roi_head=dict(
        num_stuff_classes=0,
        do_panoptic=False,
        mask_head=dict(num_classes=80, num_stuff_classes=0, loss_rank=None)),
    test_cfg=dict(rcnn=dict(_delete_=True, max_per_img=100, mask_thr=0.5)))
