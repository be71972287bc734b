# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""K-Net detector for instance and panoptic segmentation on mmdet 3.x."""
from typing import List, Optional, Tuple

from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, SampleList
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from torch import Tensor

from ..gt_preprocessing import (KernelGroundTruth, preprocess_kernel_gt,
                                resize_to_assign)


def _to_list_cfg(cfg):
    return cfg if cfg is None else ConfigDict(cfg)


@MODELS.register_module()
class KNet(BaseDetector):
    """K-Net: kernel head (``rpn_head``) + iterative update head
    (``roi_head``) on a backbone and FPN.

    The submodule names are those of the original, so released checkpoints
    load without renaming. Ground truth is prepared here: thing masks and
    (panoptic) stuff masks from the semantic map are resized bilinearly to
    the padded batch size / ``mask_assign_stride`` and used as soft targets.

    Args:
        backbone / neck / rpn_head / roi_head (dict): Module configs.
        train_cfg (dict): ``rpn`` (assigner/sampler) and ``rcnn`` (a list,
            one per stage).
        test_cfg (dict): ``rpn`` (unused) and ``rcnn`` (post-processing).
        num_thing_classes / num_stuff_classes (int): Class split.
        mask_assign_stride (int): Stride of the assignment targets.
        data_preprocessor (dict): Usually ``DetDataPreprocessor`` with
            ``pad_mask=True`` and ``pad_seg=True``.
    """

    def __init__(self,
                 backbone: dict,
                 rpn_head: dict,
                 roi_head: dict,
                 neck: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 num_thing_classes: int = 80,
                 num_stuff_classes: int = 53,
                 mask_assign_stride: int = 4,
                 thing_label_in_seg: int = 0,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            self.neck = MODELS.build(neck)
        train_cfg = _to_list_cfg(train_cfg)
        test_cfg = _to_list_cfg(test_cfg)
        rpn_head = dict(rpn_head)
        rpn_head.update(
            train_cfg=train_cfg.get('rpn') if train_cfg else None,
            test_cfg=test_cfg.get('rpn') if test_cfg else None)
        self.rpn_head = MODELS.build(rpn_head)
        roi_head = dict(roi_head)
        roi_head.update(
            train_cfg=train_cfg.get('rcnn') if train_cfg else None,
            test_cfg=test_cfg.get('rcnn') if test_cfg else None)
        self.roi_head = MODELS.build(roi_head)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.num_thing_classes = num_thing_classes
        self.num_stuff_classes = num_stuff_classes
        self.mask_assign_stride = mask_assign_stride

    @property
    def do_panoptic(self) -> bool:
        return bool(getattr(self.roi_head, 'do_panoptic', False))

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        x = self.backbone(batch_inputs)
        if self.with_neck:
            x = self.neck(x)
        return x

    def preprocess_gt(self, batch_data_samples: SampleList) -> tuple:
        """Soft thing / stuff masks at the assignment stride, per image.

        Returns:
            tuple: gt_masks, gt_labels, gt_sem_masks, gt_sem_labels (the last
            two are None for instance models); see
            :func:`~knet.models.gt_preprocessing.preprocess_kernel_gt` for
            the full ground truth with instance ids.
        """
        return self.kernel_gt(batch_data_samples).as_loss_args()

    def kernel_gt(self, batch_data_samples: SampleList) -> KernelGroundTruth:
        """The kernels' ground truth, instance ids included."""
        return preprocess_kernel_gt(batch_data_samples,
                                    self.mask_assign_stride,
                                    self.num_thing_classes, self.do_panoptic)

    @staticmethod
    def _resize_to_assign(masks: Tensor, pad_h: int, pad_w: int,
                          size: Tuple[int, int]) -> Tensor:
        """Zero-pad (n, h, w) masks to the batch shape, resize bilinearly."""
        return resize_to_assign(masks, pad_h, pad_w, size)

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> dict:
        x = self.extract_feat(batch_inputs)
        gt = self.preprocess_gt(batch_data_samples)
        rpn_losses, kernels, x_feats, mask_preds = self.rpn_head.loss(x, *gt)
        losses = dict(rpn_losses)
        losses.update(self.roi_head.loss(x_feats, kernels, mask_preds, *gt))
        return losses

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Panoptic (``pred_panoptic_seg``) or instance (``pred_instances``)
        predictions at the original image size (``rescale`` is ignored, as
        in the original: outputs are always at the original size)."""
        x = self.extract_feat(batch_inputs)
        kernels, x_feats, mask_preds = self.rpn_head.predict(x)
        metas = [s.metainfo for s in batch_data_samples]
        results = self.roi_head.predict(x_feats, kernels, mask_preds, metas)
        for sample, result in zip(batch_data_samples, results):
            if self.do_panoptic:
                sample.pred_panoptic_seg = PixelData(sem_seg=result[None])
            else:
                sample.pred_instances = result
        return batch_data_samples

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: Optional[List[DetDataSample]] = None
                 ) -> tuple:
        """Raw (cls_score, mask logits) of every update stage."""
        x = self.extract_feat(batch_inputs)
        kernels, x_feats, mask_preds = self.rpn_head.predict(x)
        return tuple(self.roi_head(x_feats, kernels, mask_preds))
