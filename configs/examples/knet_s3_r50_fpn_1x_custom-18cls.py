# K-Net instance segmentation on your own COCO-format dataset with 18
# classes: only class counts, names and paths change (README, "Training on
# your own data"). Tested by tests/configs/test_custom_dataset.py.
# The backbone starts from torchvision's ImageNet ResNet-50
# (init_cfg checkpoint='torchvision://resnet50', inherited): that needs
# torchvision and the network on first use. Without them, pass
# --cfg-options model.backbone.init_cfg.checkpoint=/path/to/resnet50.pth
# (a downloaded copy) or model.backbone.init_cfg=None (from scratch).
# Every class count below is checked against metainfo at start-up.
_base_ = ['../det/knet/knet_s3_r50_fpn_1x_coco.py']

classes = ('c00', 'c01', 'c02', 'c03', 'c04', 'c05', 'c06', 'c07', 'c08',
           'c09', 'c10', 'c11', 'c12', 'c13', 'c14', 'c15', 'c16', 'c17')
num_classes = len(classes)
data_root = 'data/my_coco/'

model = dict(
    num_thing_classes=num_classes,
    rpn_head=dict(num_classes=num_classes, num_thing_classes=num_classes),
    roi_head=dict(
        num_thing_classes=num_classes,
        mask_head=dict(
            num_classes=num_classes, num_thing_classes=num_classes)))

train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='annotations/train.json',
        data_prefix=dict(img='images/')))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='annotations/val.json',
        data_prefix=dict(img='images/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
