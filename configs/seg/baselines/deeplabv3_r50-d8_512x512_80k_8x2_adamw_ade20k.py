# Plain DeepLabV3 baseline, K-Net AdamW 80k schedule (8 GPUs x 2 images).
_base_ = [
    '../_base_/models/deeplabv3_r50-d8.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_adamw_80k.py'
]
model = dict(
    data_preprocessor=dict(size=(512, 512)),
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150))
