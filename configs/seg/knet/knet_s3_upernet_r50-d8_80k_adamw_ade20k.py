# UPerNet-based K-Net; the backbone is not dilated despite "d8" in the name
# (kept from the original file name).
_base_ = [
    '../_base_/models/knet_s3_upernet_r50.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_adamw_80k.py'
]
