# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Start-up config checks: class counts against the dataset, unused
train_cfg / test_cfg keys, torchvision weights, torchrun environment."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import knet  # noqa: F401
from knet.engine import config_checks as cc
from knet.engine.runner import STARTUP_CHECKS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET = osp.join(REPO, 'configs/det/knet')
INSTANCE = osp.join(DET, 'knet_s3_r50_fpn_1x_coco.py')
PANOPTIC = osp.join(DET, 'knet_s3_r50_fpn_1x_coco-panoptic.py')
SEMANTIC = osp.join(REPO, 'configs/seg/knet/'
                    'knet_s3_upernet_r50-d8_80k_adamw_ade20k.py')
TOY_PAN = osp.join(REPO, 'configs/toy/knet_s3_r18_fpn_toy-panoptic.py')
TOY_SEM = osp.join(REPO, 'configs/toy/knet_s3_fcn_r18_toy-semantic.py')
ALL_CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs/**/*.py'), recursive=True)
    if '_base_' not in p and '/common/' not in p)


def _set_classes(cfg, classes, **extra):
    for loader in cc.DATALOADERS:
        for _, ds in cc._leaf_datasets(cfg[loader].dataset, loader):
            ds['metainfo'] = dict(classes=classes, **extra)


def test_checks_are_registered():
    for fn in (cc.check_class_counts, cc.report_unused_options,
               cc.check_torchvision_weights, cc.check_launcher_env):
        assert fn in STARTUP_CHECKS


@pytest.mark.parametrize('path', ALL_CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in ALL_CONFIGS])
def test_every_config_passes(path):
    cfg = Config.fromfile(path)
    assert cc.class_count_mismatches(cfg) == []
    assert cc.unused_option_messages(cfg) == []
    # the datasets were found, so the check really compared something
    assert cc.dataset_class_counts(cfg)


def test_known_counts_of_the_originals():
    counts = cc.dataset_class_counts(Config.fromfile(PANOPTIC))
    assert ('train_dataloader.dataset', 'CocoPanopticDataset.METAINFO', 80,
            53) in counts
    counts = cc.dataset_class_counts(Config.fromfile(SEMANTIC))
    assert {c[2:] for c in counts} == {(150, 0)}
    model = {k: v for k, v, _ in cc.det_model_class_counts(
        Config.fromfile(INSTANCE).model)}
    assert model['model.roi_head.mask_head.num_classes'] == 80
    assert model['model.rpn_head.num_stuff_classes'] == 0


def test_18_class_data_with_80_class_model_stops():
    cfg = Config.fromfile(INSTANCE)
    _set_classes(cfg, tuple(f'c{i}' for i in range(18)))
    with pytest.raises(ValueError) as err:
        cc.check_class_counts(cfg)
    msg = str(err.value)
    assert 'model.roi_head.mask_head.num_classes = 80' in msg
    assert 'model.rpn_head.num_classes = 80' in msg
    assert 'the dataset has 18 classes (train_dataloader.dataset, ' \
        'val_dataloader.dataset, test_dataloader.dataset; from ' \
        'test_dataloader.dataset.metainfo, train_dataloader.dataset.' \
        'metainfo, val_dataloader.dataset.metainfo)' in msg
    # one line per config key
    assert msg.count('model.rpn_head.num_classes = 80') == 1
    assert 'set model.roi_head.mask_head.num_classes=18' in msg
    assert INSTANCE in msg


def test_model_smaller_than_the_data_stops():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/examples/knet_s3_r50_fpn_1x_custom-18cls.py'))
    for loader in cc.DATALOADERS:
        cfg[loader].dataset.pop('metainfo')
    msg = '\n'.join(cc.class_count_mismatches(cfg))
    assert 'model.num_thing_classes = 18' in msg
    assert 'the dataset has 80 classes (train_dataloader.dataset, ' \
        'val_dataloader.dataset, test_dataloader.dataset; from ' \
        'CocoDataset.METAINFO)' in msg


def test_semantic_150_classes_on_11_class_data_stops():
    cfg = Config.fromfile(SEMANTIC)
    _set_classes(cfg, tuple(f'c{i}' for i in range(11)))
    msg = '\n'.join(cc.class_count_mismatches(cfg))
    for key in ('model.decode_head.kernel_generate_head.num_classes = 150',
                'model.decode_head.kernel_update_head[2].num_classes = 150',
                'model.auxiliary_head.num_classes = 150'):
        assert key in msg
    assert 'has 11 classes' in msg


def test_thing_stuff_split_is_compared():
    cfg = Config.fromfile(TOY_PAN)  # 6 things + 5 stuff
    cfg.model.num_thing_classes = 5
    cfg.model.num_stuff_classes = 6
    msg = '\n'.join(cc.class_count_mismatches(cfg))
    assert 'model.num_thing_classes = 5, but the dataset has 6 thing ' \
        'classes (train_dataloader.dataset' in msg
    assert 'model.num_stuff_classes = 6' in msg
    # the totals (11) agree, so the 11-wide classifiers are not reported
    assert 'mask_head.num_classes' not in msg


def test_panoptic_metainfo_must_split_its_classes():
    cfg = Config.fromfile(TOY_PAN)
    _set_classes(cfg, tuple('abcdefghijk'), thing_classes=tuple('abc'),
                 stuff_classes=tuple('de'))
    with pytest.raises(ValueError, match='11 classes but 3 thing_classes'):
        cc.check_class_counts(cfg)


def test_unused_test_cfg_keys_and_typos():
    cfg = Config.fromfile(PANOPTIC)
    cfg.merge_from_dict({
        'model.test_cfg.rcnn.mask_thres': 0.4,
        'model.test_cfg.rcnn.merge_stuff_thing.overlap_thres': 0.5,
        'model.test_cfg.rcnn.zzz': 1,
        'model.train_cfg.rcnn.pos_weight': 2,
        'model.roi_head.test_cfg': dict(max_per_img=5),
    })
    msgs = cc.unused_option_messages(cfg)
    text = '\n'.join(msgs)
    assert 'model.test_cfg.rcnn.mask_thres is not read by any K-Net head; ' \
        'did you mean model.test_cfg.rcnn.mask_thr?' in text
    assert 'did you mean model.test_cfg.rcnn.merge_stuff_thing.' \
        'overlap_thr?' in text
    assert 'model.test_cfg.rcnn.zzz is not read by any K-Net head' in msgs
    assert 'model.train_cfg.rcnn.pos_weight = 2 has no effect' in text
    assert 'model.roi_head.test_cfg is replaced by model.test_cfg.rcnn' \
        in text
    assert len(msgs) == 5


class _Recorder(dict):
    """A dict that records every key read through get / []."""

    def __init__(self, data, prefix, seen):
        super().__init__({
            k: _Recorder(v, f'{prefix}{k}.', seen) if isinstance(v, dict)
            else v for k, v in data.items()})
        self._prefix, self._seen = prefix, seen

    def get(self, key, default=None):
        self._seen.add(self._prefix + key)
        return super().get(key, default)

    def __getitem__(self, key):
        self._seen.add(self._prefix + key)
        return super().__getitem__(key)


def _flat_keys(tree, prefix=''):
    keys = set()
    for k, v in tree.items():
        keys.add(prefix + k)
        if isinstance(v, dict):
            keys |= _flat_keys(v, f'{prefix}{k}.')
    return keys


def test_known_test_cfg_keys_are_the_keys_the_head_reads():
    """Run the iterative head's instance and panoptic post-processing with
    a recording test_cfg: the keys read are exactly the declared ones."""
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = Config.fromfile(TOY_PAN)
    _, test_keys = cc.knet_cfg_key_trees()
    known = _flat_keys(test_keys['rcnn'])
    seen = set()
    for panoptic in (True, False):
        model_cfg = cfg.model.copy()
        model_cfg.roi_head.do_panoptic = panoptic
        model = MODELS.build(model_cfg).eval()
        full = dict(max_per_img=5, mask_thr=0.5, mask_score=False,
                    merge_stuff_thing=dict(overlap_thr=0.6,
                                           instance_score_thr=0.3,
                                           segment_id_start=1))
        model.roi_head.test_cfg = _Recorder(full, '', seen)
        packed = demo_mm_inputs(1, image_shapes=[(3, 64, 64)],
                                num_classes=6)
        with torch.no_grad():
            model(**model.data_preprocessor(packed, False), mode='predict')
    assert seen <= known
    assert known - {'merge_stuff_thing'} <= seen | {'merge_stuff_thing'}


def test_known_train_cfg_keys_cover_what_the_heads_read():
    """Build the kernel head and the iterative head with recording
    train_cfg dicts: every key read is a declared one."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = Config.fromfile(TOY_PAN)
    train_keys, _ = cc.knet_cfg_key_trees()
    for head, part in (('rpn_head', 'rpn'), ('roi_head', 'rcnn')):
        seen = set()
        kwargs = cfg.model[head].to_dict()
        cls = MODELS.get(kwargs.pop('type'))
        cls(**kwargs, train_cfg=_Recorder(cfg.model.train_cfg[part].to_dict(),
                                          '', seen))
        assert {'assigner', 'sampler'} <= seen <= set(train_keys[part])


def test_torchvision_missing_stops_with_the_working_commands(monkeypatch):
    real = cc.importlib.util.find_spec
    monkeypatch.setattr(
        cc.importlib.util, 'find_spec',
        lambda name, *a: None if name == 'torchvision' else real(name, *a))
    example = osp.join(REPO,
                       'configs/examples/knet_s3_r50_fpn_1x_custom-18cls.py')
    cfg = Config.fromfile(example)
    with pytest.raises(RuntimeError) as err:
        cc.check_torchvision_weights(cfg)
    msg = str(err.value)
    assert "model.backbone.init_cfg.checkpoint = 'torchvision://resnet50'" \
        in msg
    assert 'resnet50-0676ba61.pth' in msg
    assert 'network' in msg and 'pip install torchvision' in msg
    assert f'python tools/train.py {example} --cfg-options ' \
        'model.backbone.init_cfg=None' in msg
    assert 'model.backbone.init_cfg.checkpoint=/path/to/weights.pth' in msg
    # weights from a checkpoint (test, fine-tuning): no ImageNet init
    cfg.load_from = 'some.pth'
    cc.check_torchvision_weights(cfg)
    assert cfg.model.backbone.init_cfg is None
    # configs without torchvision weights pass
    cc.check_torchvision_weights(Config.fromfile(TOY_PAN))


def test_torchvision_present_is_not_touched(monkeypatch):
    monkeypatch.setattr(cc.importlib.util, 'find_spec', lambda *a: object())
    cfg = Config.fromfile(INSTANCE)
    cc.check_torchvision_weights(cfg)
    assert cfg.model.backbone.init_cfg.checkpoint == 'torchvision://resnet50'


def test_launcher_pytorch_without_torchrun(monkeypatch):
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(var, raising=False)
    cfg = Config(dict(launcher='pytorch'))
    with pytest.raises(RuntimeError, match='torchrun') as err:
        cc.check_launcher_env(cfg)
    assert 'tools/dist_train.sh' in str(err.value)
    cc.check_launcher_env(Config(dict(launcher='none')))
    from knet.engine import configure_launcher
    with pytest.raises(SystemExit, match='RANK, WORLD_SIZE'):
        configure_launcher(Config(), 'pytorch')
    for var, value in (('RANK', '0'), ('WORLD_SIZE', '1'),
                       ('MASTER_ADDR', '127.0.0.1'), ('MASTER_PORT', '1')):
        monkeypatch.setenv(var, value)
    cc.check_launcher_env(cfg)


def test_data_root_override_alone_moves_the_datasets():
    """What mmdet's own train.py / test.py (mim) do with
    --cfg-options data_root=...: a plain merge; the check moves the rest."""
    cfg = Config.fromfile(TOY_PAN)
    old = cfg.data_root
    cfg.merge_from_dict({'data_root': '/new/coco/',
                         'val_dataloader.dataset.data_root': '/mine/'})
    assert cfg.train_dataloader.dataset.data_root == old  # mmengine alone
    cc.apply_data_root_override(cfg)
    assert cfg.train_dataloader.dataset.data_root == '/new/coco/'
    assert cfg.test_dataloader.dataset.data_root == '/new/coco/'
    assert cfg.val_dataloader.dataset.data_root == '/mine/'  # explicit
    assert cfg.test_evaluator.ann_file.startswith('/new/coco/annotations/')
    # without an override nothing changes
    cfg = Config.fromfile(TOY_PAN)
    before = cfg.to_dict()
    cc.apply_data_root_override(cfg)
    assert cfg.to_dict() == before
