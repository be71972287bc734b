# Video K-Net on VIP-Seg (720p), R-50 (spec video_knet_spec.md §5.4,
# §7.1 #8): the KITTI-STEP joint-training model (kernel linking
# previous_type='ffn', kernel association embedding, quasi-dense tracker,
# strides 4 / 4 / 2) with 124 classes: 58 things + 66 stuff (model labels
# things first). R-50 with plain BN (frozen statistics, norm_eval). 12
# epochs over the train pairs (RepeatDataset x1: no wrapper), lr x0.1 at
# epochs 9 and 11, 1 pair per GPU on 8 GPUs.
_base_ = [
    '../_base_/models/video_knet_s3_r50_fpn.py',
    '../_base_/datasets/vipseg_vps.py',
    '../_base_/schedules/schedule_12e_step9-11.py',
    '../_base_/default_runtime.py'
]
num_thing_classes = 58
num_stuff_classes = 66
num_classes = num_thing_classes + num_stuff_classes

model = dict(
    num_thing_classes=num_thing_classes,
    num_stuff_classes=num_stuff_classes,
    backbone=dict(norm_cfg=dict(type='BN', requires_grad=True),
                  norm_eval=True),
    rpn_head=dict(
        num_classes=num_classes,
        num_thing_classes=num_thing_classes,
        num_stuff_classes=num_stuff_classes,
        # softmax CE of the kernel head: "no class" (= num_classes) ignored
        loss_seg=dict(ignore_index=num_classes)),
    roi_head=dict(
        num_thing_classes=num_thing_classes,
        num_stuff_classes=num_stuff_classes,
        mask_head=dict(
            num_classes=num_classes,
            num_thing_classes=num_thing_classes,
            num_stuff_classes=num_stuff_classes)))

train_dataloader = dict(batch_size=1)

# the link modules of the first two stages get no gradient (spec §2.3)
find_unused_parameters = True
# The original initialises from the COCO panoptic K-Net
# (configs/det/coco/knet_s3_r50_fpn_ms-3x_coco-panoptic.py; README:
# `--load-from /path/knet_coco_pretrained_r50`); its 133-class layers do
# not fit the 124 classes here and keep their initial weights. Nothing is
# downloaded: pass --load-from CKPT (or --cfg-options load_from=CKPT).
load_from = None
# the original trained on 8 GPUs x 1 pair
auto_scale_lr = dict(enable=False, base_batch_size=8)
