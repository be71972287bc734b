# KITTI-STEP video panoptic data for Video K-Net (spec video_knet_spec.md
# §2.2, §5.1, §7.1 #2), in model space (things first: person 0, car 1,
# then the 17 stuff trainIds in order; 255 void). Both the official layout
# (images/, panoptic_maps/) and the original's flattened video_sequence/
# are read (KITTISTEPDataset, layout='auto'); see DATASET.md, 'KITTI-STEP'.
dataset_type = 'KITTISTEPDataset'
data_root = 'data/kitti-step/'
backend_args = None
data_num_classes = 19
# trainIds of the thing classes (person, car), in model-label order
thing_ids = (11, 13)
# the same classes in model space (what the metrics see)
model_thing_ids = (0, 1)

# One training sample = (key frame, reference frame at an offset in
# {-2,-1,1,2}), the original's fixed pairs (redraw=False; an edge frame
# whose partner does not exist is dropped and mmengine refetches another),
# both frames loaded and augmented alike (share_random_params=True).
# RandomCrop keeps negative crops (allow_negative_crop=True): a None inside
# the broadcaster would break its collate; a pair whose crop kept no shared
# instance (hence also one without GT) is rejected after it, as the
# original's check_id_match does.
# crop 384x1248 (mmdet RandomCrop crop_size is (w, h) for crop_type
# 'absolute').
train_pipeline = [
    dict(type='STEPPairFrameSample', offsets=(-2, -1, 1, 2), redraw=False),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadImageFromFile', backend_args=backend_args),
            dict(type='LoadSTEPPanopticAnnotations',
                 num_classes=data_num_classes, thing_ids=thing_ids),
            dict(type='RandomResize', scale=(1248, 384),
                 ratio_range=(0.5, 2.0), keep_ratio=True),
            dict(type='RandomCrop', crop_size=(1248, 384),
                 crop_type='absolute', allow_negative_crop=True),
            dict(type='RandomFlip', prob=0.5),
        ]),
    dict(type='RejectPairWithoutSharedInstance'),
    dict(type='PackVideoSegInputs'),
]
# Frame-level test at the native size (the model pads to 32): one frame per
# sample, frames of a video in order (the tracker resets at frame_id 0).
test_pipeline = [
    dict(
        type='TransformBroadcaster',
        transforms=[
            dict(type='LoadImageFromFile', backend_args=backend_args),
            dict(type='LoadSTEPPanopticAnnotations',
                 num_classes=data_num_classes, thing_ids=thing_ids,
                 with_panoptic_gt=True),
        ]),
    dict(type='PackVideoSegInputs'),
]
# TrackImgSampler: every (video, frame) once per epoch. mmdet's
# TrackImgSampler refuses RepeatDataset (it accepts only a BaseVideoDataset,
# ConcatDataset or ClassBalancedDataset), so the original's RepeatDataset x2
# is expressed as twice the epochs in the schedule instead.
train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='TrackImgSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='TrackImgSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = [
    dict(type='STQMetric', num_classes=data_num_classes,
         thing_ids=model_thing_ids, label_divisor=1000),
    dict(type='VPQMetric', num_classes=data_num_classes,
         thing_ids=model_thing_ids, label_divisor=1000,
         benchmark='kitti-step'),
]
test_evaluator = val_evaluator
