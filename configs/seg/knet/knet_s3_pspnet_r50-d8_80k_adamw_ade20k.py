_base_ = [
    '../_base_/models/knet_s3_pspnet_r50-d8.py',
    '../_base_/datasets/ade20k.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_adamw_80k.py'
]
