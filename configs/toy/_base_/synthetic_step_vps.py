# The built-in synthetic KITTI-STEP-style video data
# (tools/generate_synthetic_data.py --tasks step), read by KITTISTEPDataset
# (flattened layout video_sequence/{train,val}/) in model space, scored with
# STQ and VPQ. Generated at start-up when missing
# (knet/datasets/data_checks.py, all entry points) into the data_root
# folder named 'step'. The generator's defaults (6 train / 3 val videos)
# are what the unit tests use; the toy asks for more training videos.
# A complete folder made with other parameters is kept (DATASET.md,
# 'Built-in synthetic data').
synthetic_data = dict(task='step', seed=0, num_train=64, num_val=8,
                      num_frames=8, size=(128, 256))
dataset_type = 'KITTISTEPDataset'
data_root = 'data/synthetic/step/'
backend_args = None
# stuff first, then things (SYNTHETIC_SEMANTIC_CLASSES); STEP R values
stuff_classes = ('sky', 'wall', 'ground', 'grass', 'water')
thing_classes = ('disk', 'square', 'triangle', 'ring', 'cross', 'star')
data_num_classes = 11
thing_ids = (5, 6, 7, 8, 9, 10)
# model space: things first (0..5), then stuff (6..10)
model_thing_ids = (0, 1, 2, 3, 4, 5)
metainfo = dict(classes=stuff_classes + thing_classes, thing_ids=thing_ids)

# crop 128x256 (mmdet RandomCrop crop_size is (w, h) for 'absolute').
train_pipeline = [
    dict(type='STEPPairFrameSample', offsets=(-2, -1, 1, 2), redraw=False),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadImageFromFile', backend_args=backend_args),
            dict(type='LoadSTEPPanopticAnnotations',
                 num_classes=data_num_classes, thing_ids=thing_ids),
            dict(type='RandomResize', scale=(256, 128),
                 ratio_range=(0.75, 1.5), keep_ratio=True),
            dict(type='RandomCrop', crop_size=(256, 128),
                 crop_type='absolute', allow_negative_crop=True),
            dict(type='RandomFlip', prob=0.5),
        ]),
    dict(type='RejectPairWithoutSharedInstance'),
    dict(type='PackVideoSegInputs'),
]
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
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='TrackImgSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        metainfo=metainfo,
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='TrackImgSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        metainfo=metainfo,
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
