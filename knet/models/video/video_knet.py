# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Video K-Net for video panoptic segmentation (spec video_knet_spec.md §2).

One K-Net (backbone, FPN, kernel head, iterative update head) trained on
(key, reference) frame pairs with the full K-Net loss on both frames, plus
the kernel association embedding: the key frame's last stage links its
kernels to the reference frame's kernels (``VideoKernelUpdateHead``), the
matched thing kernels of both frames go through ``embed_fcs`` -> ``fc_embed``
-> ``track_head``, and the multi-positive / L2 embedding losses pull the
kernels of one instance together. At test time frames arrive one by one;
the previous frame's last-stage kernels are the temporal context and a
quasi-dense tracker assigns track ids from the embeddings.

The "toy Video K-Net" of the paper is a config of this model:
``track_head=None`` and ``link_previous=False`` track with the raw
last-stage thing kernels as embeddings.

Submodule names are the original's (``backbone``, ``neck``, ``rpn_head``,
``roi_head``, ``track_head``, ``embed_fcs``, ``fc_embed``), so released
checkpoints load by key map.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmdet.models.mot import BaseMOTModel
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import TrackDataSample
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from ..gt_preprocessing import KernelGroundTruth, preprocess_kernel_gt
from ..postprocessing import INSTANCE_OFFSET
from ..trackers.quasi_dense_embed_tracker import masks_to_track_boxes

#: ``test_cfg`` keys of the video model itself (``rpn`` / ``rcnn`` go to
#: the heads)
KNOWN_VIDEO_TEST_CFG_KEYS = frozenset({
    'rpn', 'rcnn', 'unassigned_label', 'semantic_filter_crop',
    'track_empty_frames', 'align_track_ids'
})


class FramePrediction(NamedTuple):
    """One frame's video panoptic output (model label space)."""
    #: (H, W) long: class + track_id * INSTANCE_OFFSET; class
    #: ``num_classes`` (void) where no segment is
    panoptic: Tensor
    #: thing segments: masks (M, H, W), labels, scores, instances_id
    instances: InstanceData


def _cfg(cfg: Optional[dict]) -> ConfigDict:
    return ConfigDict(cfg or {})


@MODELS.register_module()
@MODELS.register_module(name='VideoKNetQuansiEmbedFCJointTrain')
class VideoKNet(BaseMOTModel):
    """Video K-Net (joint training on frame pairs, online tracking).

    Args:
        backbone / neck / rpn_head / roi_head (dict): the K-Net modules
            (``roi_head.mask_head`` a ``VideoKernelUpdateHead`` for linking).
        track_head (dict, optional): embedding head of the matched kernels
            (``QuasiDenseMaskEmbedHead``); None = toy Video K-Net (raw
            kernels as embeddings, no tracking loss).
        tracker (dict): ``KNetQuasiDenseTracker`` settings (spec §2.9).
        num_thing_classes / num_stuff_classes (int): model label split.
        mask_assign_stride (int): stride of the assignment targets (2).
        link_previous (bool): give the reference (training) / previous
            (test) frame's last-stage kernels to the key frame's last stage.
        num_emb_fcs (int): [Linear, LN, ReLU] blocks of ``embed_fcs`` (1).
        embed_channels (int): width of ``embed_fcs`` / ``fc_embed`` (the
            original hard-codes 256; a smaller model sets its kernel width).
        train_cfg (dict): ``rpn``, ``rcnn`` (per stage) and ``track``
            (``assigner`` / ``sampler`` matching the last stage's thing
            kernels to the ground truth for the embedding loss).
        test_cfg (dict): ``rpn``, ``rcnn`` (panoptic post-processing),
            ``unassigned_label`` (None: unclaimed pixels are void, spec
            §9.1-2 fix; an int: that model label, the original's
            behaviour), ``semantic_filter_crop`` (True: the kernel head's
            semantic map is cropped to the image before it is resized for
            the tracker's boxes; False: the original stretches the padded
            map, spec §9.1-5).
        semantic_filter (bool): boxes for the tracker from mask pixels
            whose semantic argmax is a thing class (spec §2.8-6).
    """

    _IGNORED_ARGS = ('kitti_step', 'vipseg', 'cityscapes', 'ignore_label',
                     'bbox_roi_extractor', 'track_train_cfg',
                     'thing_label_in_seg', 'detach_mask_emd')

    def __init__(self,
                 backbone: dict,
                 rpn_head: dict,
                 roi_head: dict,
                 neck: Optional[dict] = None,
                 track_head: Optional[dict] = None,
                 tracker: Optional[dict] = None,
                 num_thing_classes: int = 2,
                 num_stuff_classes: int = 17,
                 mask_assign_stride: int = 2,
                 link_previous: bool = True,
                 num_emb_fcs: int = 1,
                 embed_channels: int = 256,
                 semantic_filter: bool = True,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(data_preprocessor, init_cfg)
        unknown = set(kwargs) - set(self._IGNORED_ARGS)
        if unknown:
            raise TypeError(
                f'VideoKNet got unexpected arguments: {sorted(unknown)}')
        train_cfg, test_cfg = _cfg(train_cfg), _cfg(test_cfg)
        unknown = set(test_cfg) - KNOWN_VIDEO_TEST_CFG_KEYS
        if unknown:
            raise KeyError(f'model.test_cfg: unknown keys {sorted(unknown)}; '
                           f'known: {sorted(KNOWN_VIDEO_TEST_CFG_KEYS)}')
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            self.neck = MODELS.build(neck)
        rpn_head = dict(rpn_head)
        rpn_head.update(
            train_cfg=train_cfg.get('rpn'), test_cfg=test_cfg.get('rpn'))
        self.rpn_head = MODELS.build(rpn_head)
        roi_head = dict(roi_head)
        roi_head.update(
            train_cfg=train_cfg.get('rcnn'), test_cfg=test_cfg.get('rcnn'))
        self.roi_head = MODELS.build(roi_head)
        if track_head is not None:
            act_cfg = dict(type='ReLU', inplace=True)
            self.embed_fcs = nn.ModuleList()
            for _ in range(num_emb_fcs):
                self.embed_fcs.append(
                    nn.Linear(embed_channels, embed_channels, bias=False))
                self.embed_fcs.append(
                    build_norm_layer(dict(type='LN'), embed_channels)[1])
                self.embed_fcs.append(build_activation_layer(act_cfg))
            self.fc_embed = nn.Linear(embed_channels, embed_channels)
            self.track_head = MODELS.build(track_head)
        else:
            self.track_head = None
        self.tracker_cfg = tracker
        self.tracker = MODELS.build(tracker) if tracker else None
        track_cfg = train_cfg.get('track')
        if track_head is not None and track_cfg:
            self.track_assigner = TASK_UTILS.build(track_cfg['assigner'])
            self.track_sampler = TASK_UTILS.build(track_cfg['sampler'])
        elif track_head is not None and train_cfg:
            raise KeyError('model.train_cfg.track (assigner, sampler) is '
                           'needed to train the track head')
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.num_thing_classes = num_thing_classes
        self.num_stuff_classes = num_stuff_classes
        self.num_classes = num_thing_classes + num_stuff_classes
        self.mask_assign_stride = mask_assign_stride
        self.link_previous = link_previous
        self.semantic_filter = semantic_filter
        # online state (reset on the first frame of every sequence)
        self._memory: Optional[Tensor] = None

    # ------------------------------------------------------------------
    # shared pieces
    # ------------------------------------------------------------------
    @property
    def num_proposals(self) -> int:
        """Number of thing kernels."""
        return self.roi_head.num_proposals

    def extract_feat(self, imgs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone + FPN features of (B, C, H, W) images."""
        x = self.backbone(imgs)
        if hasattr(self, 'neck'):
            x = self.neck(x)
        return x

    def kernel_gt(self, frames: Sequence) -> KernelGroundTruth:
        """Soft thing / stuff targets at the assignment stride, with ids."""
        return preprocess_kernel_gt(frames, self.mask_assign_stride,
                                    self.num_thing_classes, True)

    def embed(self, kernels: Tensor) -> Tensor:
        """(M, C, K, K) or (M, C) kernels -> (M, E) association embeddings.

        ``embed_fcs`` -> ``fc_embed`` -> ``track_head``; the toy model (no
        track head) uses the flattened kernels themselves.
        """
        feats = kernels.flatten(1)
        if self.track_head is None:
            return feats
        for layer in self.embed_fcs:
            feats = layer(feats)
        return self.track_head(self.fc_embed(feats))

    @staticmethod
    def _split_frames(inputs: Tensor, data_samples: List[TrackDataSample]
                      ) -> Tuple[Tensor, list, Tensor, list]:
        """Key / reference images and frame samples of a pair batch."""
        meta = data_samples[0].metainfo
        key = int(meta.get('key_frames_inds', [0])[0])
        ref_inds = meta.get('ref_frames_inds', [1 - key])
        if inputs.dim() != 5 or inputs.size(1) != 2 or len(ref_inds) != 1:
            raise ValueError(
                'VideoKNet trains on (key, reference) frame pairs: inputs '
                f'must be (N, 2, C, H, W), got {tuple(inputs.shape)}; use '
                'STEPPairFrameSample in the train pipeline')
        ref = int(ref_inds[0])
        return (inputs[:, key], [s[key] for s in data_samples],
                inputs[:, ref], [s[ref] for s in data_samples])

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def loss(self, inputs: Tensor, data_samples: List[TrackDataSample],
             **kwargs) -> Dict[str, Tensor]:
        """Losses of one batch of (key, reference) pairs (spec §2.3).

        Keys: key frame ``loss_rpn_*`` / ``s{i}_*``, reference frame
        ``<name>_ref_rpn`` / ``<name>_ref`` (the original's names), and
        ``loss_track`` / ``loss_track_aux`` with a track head.
        """
        key_imgs, key_frames, ref_imgs, ref_frames = self._split_frames(
            inputs, data_samples)
        key_gt = self.kernel_gt(key_frames)
        ref_gt = self.kernel_gt(ref_frames)

        # reference frame first: its last-stage kernels link the key frame
        ref_rpn, ref_stage, ref_outs = self._frame_losses(
            self.extract_feat(ref_imgs), ref_gt, None)
        previous = ref_outs.kernels[-1] if self.link_previous else None
        key_rpn, key_stage, key_outs = self._frame_losses(
            self.extract_feat(key_imgs), key_gt, previous)

        losses = dict(key_rpn)
        losses.update(key_stage)
        losses.update({f'{k}_ref_rpn': v for k, v in ref_rpn.items()})
        losses.update({f'{k}_ref': v for k, v in ref_stage.items()})
        if self.track_head is not None:
            losses.update(
                self._track_loss(key_outs, key_gt, ref_outs, ref_gt))
        return losses

    def _frame_losses(self, feats: Tuple[Tensor, ...], gt: KernelGroundTruth,
                      previous: Optional[Tensor]) -> tuple:
        """Kernel-head and stage losses of one frame batch + stage outputs."""
        rpn_losses, kernels, x_feats, mask_preds = self.rpn_head.loss(
            feats, *gt.as_loss_args())
        stage_losses, outs = self.roi_head.loss_and_stages(
            x_feats, kernels, mask_preds, *gt.as_loss_args(),
            previous_kernels=previous)
        return rpn_losses, stage_losses, outs

    def _match_last_stage(self, outs, gt: KernelGroundTruth
                          ) -> List[Tuple[Tensor, Tensor]]:
        """Per image (positive kernel indices, their GT instance ids): the
        tracking assigner on the last stage's detached predictions (first
        ``num_proposals`` kernels, thing class columns; spec §2.3-7)."""
        masks = outs.scaled_mask_preds[-1].detach()
        scores = outs.cls_scores[-1].detach()
        n = self.num_proposals
        matches = []
        for i in range(masks.size(0)):
            pred = InstanceData(
                masks=masks[i][:n],
                scores=scores[i][:n, :self.num_thing_classes])
            gt_i = InstanceData(labels=gt.labels[i], masks=gt.masks[i])
            assign = self.track_assigner.assign(pred, gt_i)
            sampling = self.track_sampler.sample(assign, pred, gt_i)
            matches.append(
                (sampling.pos_inds,
                 gt.instance_ids[i][sampling.pos_assigned_gt_inds]))
        return matches

    def _track_loss(self, key_outs, key_gt: KernelGroundTruth, ref_outs,
                    ref_gt: KernelGroundTruth) -> Dict[str, Tensor]:
        """Embedding losses of the matched thing kernels of both frames.

        Key embeddings come from the linked (tracking) kernels, reference
        embeddings from the plain last-stage kernels (spec §2.6). Each
        image uses its own kernel indices (spec §9.1-3 fix; identical to
        the original for the configs' batch of one pair per GPU).
        """
        key_kernels = key_outs.track_kernels[-1]
        ref_kernels = ref_outs.kernels[-1]
        key_embeds, ref_embeds, key_ids, ref_ids = [], [], [], []
        for i, ((k_inds, k_ids), (r_inds, r_ids)) in enumerate(
                zip(self._match_last_stage(key_outs, key_gt),
                    self._match_last_stage(ref_outs, ref_gt))):
            key_embeds.append(self.embed(key_kernels[i, k_inds]))
            ref_embeds.append(self.embed(ref_kernels[i, r_inds]))
            key_ids.append(k_ids)
            ref_ids.append(r_ids)
        return self.track_head.loss(key_embeds, ref_embeds, key_ids,
                                    ref_ids)

    # ------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the previous frames (call at a sequence start)."""
        self._memory = None
        if self.tracker is not None:
            self.tracker.reset()

    def predict(self,
                inputs: Tensor,
                data_samples: List[TrackDataSample],
                rescale: bool = True,
                **kwargs) -> List[TrackDataSample]:
        """Online video panoptic segmentation, frame after frame.

        Every frame (``inputs`` (N, T, C, H, W), frames in order) gets
        ``pred_panoptic_seg`` (class + track id * 1000, original size) and
        ``pred_track_instances``; a frame with ``frame_id == 0`` starts a
        new sequence (tracker and kernel memory reset).
        """
        if inputs.dim() == 4:
            inputs = inputs[:, None]
        for video, sample in zip(inputs, data_samples):
            for t in range(len(sample)):
                frame = sample[t]
                if int(frame.metainfo.get('frame_id', -1)) == 0:
                    self.reset()
                pred = self.predict_frame(video[t:t + 1], frame.metainfo)
                frame.pred_panoptic_seg = PixelData(
                    sem_seg=pred.panoptic[None])
                frame.pred_track_instances = pred.instances
        return data_samples

    def predict_frame(self, img: Tensor, img_meta: dict) -> FramePrediction:
        """Segment and track one (1, C, H, W) frame (spec §2.8)."""
        feats = self.extract_feat(img)
        kernels, x_feats, mask_preds, seg_preds = self.rpn_head(feats)
        kernels, mask_preds = self.rpn_head.append_stuff(
            kernels, mask_preds, seg_preds)
        previous = self._memory if self.link_previous else None
        if previous is not None and previous.shape != kernels.shape:
            previous = None  # a frame of another size/model: no context
        results, outs = self.roi_head.predict_and_stages(
            x_feats, kernels, mask_preds, [img_meta],
            previous_kernels=previous)
        # the memory holds the un-linked last-stage kernels of frame t-1
        self._memory = outs.kernels[-1].detach()
        pan = results[0]
        is_thing = pan.labels < self.num_thing_classes
        thing_inds = torch.nonzero(is_thing).flatten()
        seg_ids = pan.segment_ids[thing_inds]
        masks = pan.pan_seg[None] == seg_ids[:, None, None]
        labels = pan.labels[thing_inds]
        scores = pan.scores[thing_inds]
        track_ids = torch.zeros_like(labels)
        track_empty = self.test_cfg.get('track_empty_frames', True)
        if self.tracker is not None and (track_empty or labels.numel()):
            # an empty frame is tracked too: it ages the tracker's memory
            embeds = self.embed(
                outs.track_kernels[-1][0, pan.kernel_inds[thing_inds]])
            thing_px = (self._semantic_thing_pixels(seg_preds, img_meta)
                        if self.semantic_filter else None)
            result = self.tracker.track(
                bboxes=masks_to_track_boxes(masks, thing_px),
                labels=labels,
                scores=scores,
                embeds=embeds,
                frame_id=int(img_meta.get('frame_id', 0)))
            if self.test_cfg.get('align_track_ids', True):
                track_ids = result.instance_ids(labels.numel())
            else:
                # the original: ids of the kept, score-sorted detections
                # painted onto the first masks in segment order
                ids = (result.ids + 1).clamp(min=0)
                track_ids[:ids.numel()] = ids
        panoptic = self._panoptic_with_tracks(pan, thing_inds, track_ids)
        instances = InstanceData(
            masks=masks, labels=labels, scores=scores,
            instances_id=track_ids)
        return FramePrediction(panoptic, instances)

    def _panoptic_with_tracks(self, pan, thing_inds: Tensor,
                              track_ids: Tensor) -> Tensor:
        """Class map (model labels) + track ids * INSTANCE_OFFSET."""
        void = self.num_classes
        unassigned = self.test_cfg.get('unassigned_label', None)
        # segment id -> class: the id map holds label + index * OFFSET
        pan_seg = pan.pan_seg
        classes = pan_seg % INSTANCE_OFFSET
        is_void = pan_seg == void
        fill = void if unassigned is None else int(unassigned)
        classes = torch.where(is_void, classes.new_tensor(fill), classes)
        out = classes.clone()
        if thing_inds.numel():
            # per segment index -> track id; stuff / void get 0
            seg_index = torch.div(
                pan_seg, INSTANCE_OFFSET, rounding_mode='floor')
            seg_index = torch.where(is_void, seg_index.new_tensor(0),
                                    seg_index)
            lut = torch.zeros(
                int(seg_index.max()) + 1, dtype=torch.long,
                device=pan_seg.device)
            thing_index = torch.div(
                pan.segment_ids[thing_inds], INSTANCE_OFFSET,
                rounding_mode='floor')
            lut[thing_index] = track_ids.long()
            out = out + lut[seg_index] * INSTANCE_OFFSET
        return out

    def _semantic_thing_pixels(self, seg_preds: Tensor,
                               img_meta: dict) -> Tensor:
        """(H, W) bool: pixels whose kernel-head semantic argmax is a thing
        class, at the original image size (spec §2.8-6)."""
        ori_h, ori_w = (int(v) for v in img_meta['ori_shape'][:2])
        seg = seg_preds[:1]
        if self.test_cfg.get('semantic_filter_crop', True):
            pad_h, pad_w = img_meta['batch_input_shape']
            img_h, img_w = img_meta['img_shape'][:2]
            seg = F.interpolate(
                seg, size=(pad_h, pad_w), mode='bilinear',
                align_corners=False)[..., :img_h, :img_w]
        if tuple(seg.shape[-2:]) != (ori_h, ori_w):
            # (a same-size bilinear resize returns its input: skipped)
            seg = F.interpolate(
                seg, size=(ori_h, ori_w), mode='bilinear',
                align_corners=False)
        # == argmax < num_thing_classes (argmax takes the first maximum,
        # and thing classes come first), without the index search
        things = seg[0, :self.num_thing_classes].amax(0)
        stuff = seg[0, self.num_thing_classes:].amax(0)
        return things >= stuff

    def _forward(self, inputs: Tensor,
                 data_samples: Optional[List[TrackDataSample]] = None,
                 **kwargs) -> tuple:
        """Raw (cls_score, mask logits) of every stage of the first frame of
        every video (no temporal context; for FLOPs counting / export)."""
        if inputs.dim() == 5:
            inputs = inputs[:, 0]
        kernels, x_feats, mask_preds = self.rpn_head.predict(
            self.extract_feat(inputs))
        return tuple(self.roi_head(x_feats, kernels, mask_preds))


__all__ = ['VideoKNet', 'FramePrediction', 'KNOWN_VIDEO_TEST_CFG_KEYS']
