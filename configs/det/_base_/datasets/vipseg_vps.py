# VIP-Seg (720p) video panoptic data for Video K-Net (spec
# video_knet_spec.md §5.4, §7.1 #8), in model space (the 58 thing classes
# first, in VIPSEG_THING_IDS order, then the 66 stuff classes in VIP-Seg
# order; 255 void). Raw panomask value 200 is void (VIPSeg-Dataset issue 1).
# See DATASET.md, 'VIP-Seg'.
dataset_type = 'VIPSegDataset'
data_root = 'data/VIPSeg/'
backend_args = None
data_num_classes = 124
data_num_thing_classes = 58
# the thing classes in model space (what the metrics see)
model_thing_ids = tuple(range(data_num_thing_classes))

# (key, reference at an offset in {-2,-1,1,2}) pairs, augmented alike:
# short side 720 x [1, 2] (long side unbounded), flip, crop 736x736. The
# original pads the crop to 736 BEFORE normalising (padding = black pixels);
# mmdet pads after normalising in the data preprocessor (padding = the mean
# colour). Not reproduced; noted here because it changes the padded pixels.
train_pipeline = [
    dict(type='STEPPairFrameSample', offsets=(-2, -1, 1, 2), redraw=False),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadImageFromFile', backend_args=backend_args),
            dict(type='LoadVIPSegPanopticAnnotations'),
            dict(type='RandomResize', scale=(100000, 720),
                 ratio_range=(1.0, 2.0), keep_ratio=True),
            dict(type='RandomCrop', crop_size=(736, 736),
                 crop_type='absolute', allow_negative_crop=True),
            dict(type='RandomFlip', prob=0.5),
        ]),
    dict(type='RejectPairWithoutSharedInstance'),
    dict(type='PackVideoSegInputs'),
]
# frame-level test at the 720p size (the model pads to 32)
test_pipeline = [
    dict(
        type='TransformBroadcaster',
        transforms=[
            dict(type='LoadImageFromFile', backend_args=backend_args),
            dict(type='LoadVIPSegPanopticAnnotations', with_panoptic_gt=True),
        ]),
    dict(type='PackVideoSegInputs'),
]
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
         thing_ids=model_thing_ids, label_divisor=1000, benchmark='vipseg'),
]
test_evaluator = val_evaluator
