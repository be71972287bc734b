# Cityscapes-STEP images for the image K-Net pre-training of the KITTI-STEP
# Video K-Nets (spec video_knet_spec.md §5.2, §7.1 #1), in model space
# (things first: person 0, car 1, then the 17 stuff trainIds in order; 255
# void). Needs *_gtFine_labelTrainIds.png and *_gtFine_instanceTrainIds.png
# next to the Cityscapes gtFine files; see DATASET.md, 'Cityscapes-STEP'.
dataset_type = 'CityscapesSTEPDataset'
data_root = 'data/cityscapes/'
backend_args = None
data_num_classes = 19
thing_ids = (11, 13)
model_thing_ids = (0, 1)

# resize (2048, 1024) x [0.5, 2.0] keep-ratio, crop 1024x2048, flip. A crop
# without any thing instance (and a frame without any) is rejected
# (allow_negative_crop=False returns None; mmengine refetches), as the
# original rejects frames without a thing.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadCityscapesSTEPAnnotations', num_classes=data_num_classes,
         thing_ids=thing_ids),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=(2048, 1024), crop_type='absolute',
         allow_negative_crop=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadCityscapesSTEPAnnotations', num_classes=data_num_classes,
         thing_ids=thing_ids, with_panoptic_gt=True),
    dict(
        type='PackDetInputsWithPanopticGT',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'seq_id', 'frame_id')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    # no AspectRatioBatchSampler: the data list has no width / height and
    # every Cityscapes image is 1024x2048 anyway
    batch_sampler=None,
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
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# Image PQ over the 19 classes (the original's evaluate reports PQ; its
# mIoU is not computed here): VPQ with 1-frame windows is PQ summed over
# all images, each image its own "sequence" (img_id is the unique stem).
val_evaluator = dict(
    type='VPQMetric', num_classes=data_num_classes, thing_ids=model_thing_ids,
    label_divisor=1000, windows=[1], seq_key='img_id', frame_key='frame_id')
test_evaluator = val_evaluator
