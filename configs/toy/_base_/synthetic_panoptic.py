# The built-in synthetic COCO-panoptic data (tools/generate_synthetic_data.py)
# read by mmdet's own CocoPanopticDataset and CocoPanopticMetric.
dataset_type = 'CocoPanopticDataset'
data_root = 'data/synthetic/coco/'
# Generated at start-up when missing (knet/datasets/data_checks.py, all
# entry points): deterministic, into every dataset data_root whose folder is
# named 'coco', one process under a file lock. Extra keys are generator
# parameters (num_train, num_val, size, difficulty); a complete folder made
# with other parameters is kept. See DATASET.md, 'Built-in synthetic data'.
synthetic_data = dict(task='panoptic', seed=0)
thing_classes = ('disk', 'square', 'triangle', 'ring', 'cross', 'star')
stuff_classes = ('sky', 'wall', 'ground', 'grass', 'water')
metainfo = dict(
    classes=thing_classes + stuff_classes,
    thing_classes=thing_classes,
    stuff_classes=stuff_classes,
    palette=[(220, 40, 40), (235, 205, 35), (205, 45, 200), (250, 135, 20),
             (30, 225, 215), (120, 60, 235), (135, 190, 235),
             (150, 150, 158), (160, 120, 80), (70, 150, 60), (40, 90, 150)])
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadPanopticAnnotations', backend_args=backend_args),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadPanopticAnnotations', backend_args=backend_args),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/panoptic_train.json',
        data_prefix=dict(img='train/', seg='annotations/panoptic_train/'),
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/panoptic_val.json',
        data_prefix=dict(img='val/', seg='annotations/panoptic_val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoPanopticMetric',
    ann_file=data_root + 'annotations/panoptic_val.json',
    seg_prefix=data_root + 'annotations/panoptic_val/',
    backend_args=backend_args)
test_evaluator = val_evaluator
