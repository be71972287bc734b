# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""YouTube-VIS AP that works on numpy >= 1.24.

mmdet 3.3's ``YTVISeval.accumulate`` uses ``np.float`` (removed in numpy
1.24), so ``YouTubeVISMetric`` fails at the end of every VIS evaluation.
:class:`KNetYTVISeval` replaces ``accumulate`` with a vectorised version of
the same COCO procedure (precision envelope, recall-threshold lookup), and
:class:`KNetYouTubeVISMetric` is ``YouTubeVISMetric`` evaluated with it.
Nothing in site-packages is modified.
"""
from __future__ import annotations

import contextlib
import datetime
import io
from collections import OrderedDict
from typing import Any

import numpy as np
from mmdet.evaluation.functional import YTVIS, YTVISeval
from mmdet.evaluation.metrics import YouTubeVISMetric
from mmdet.registry import METRICS
from mmengine.logging import MMLogger

__all__ = ['KNetYTVISeval', 'KNetYouTubeVISMetric', 'YTVIS_METRIC_NAMES']

# index of each summary number in ``YTVISeval.stats``
YTVIS_METRIC_NAMES = {
    'mAP': 0, 'mAP_50': 1, 'mAP_75': 2, 'mAP_s': 3, 'mAP_m': 4, 'mAP_l': 5,
    'AR@1': 6, 'AR@10': 7, 'AR@100': 8, 'AR_s@100': 9, 'AR_m@100': 10,
    'AR_l@100': 11
}


class KNetYTVISeval(YTVISeval):
    """``YTVISeval`` with a numpy-2-safe ``accumulate``."""

    def accumulate(self, p: Any = None) -> None:
        """Precision / recall per (IoU thr, recall thr, category, area,
        max dets), -1 where a category has no GT, as in pycocotools."""
        if not self.evalImgs:
            raise RuntimeError('KNetYTVISeval: run evaluate() first')
        p = self.params if p is None else p
        p.catIds = p.catIds if p.useCats == 1 else [-1]
        rec_thrs = np.asarray(p.recThrs)
        num_t, num_r = len(p.iouThrs), len(p.recThrs)
        num_k = len(p.catIds) if p.useCats else 1
        num_a, num_m = len(p.areaRng), len(p.maxDets)
        precision = -np.ones((num_t, num_r, num_k, num_a, num_m))
        recall = -np.ones((num_t, num_k, num_a, num_m))
        scores = -np.ones((num_t, num_r, num_k, num_a, num_m))

        pe = self._paramsEval
        cat_set = set(pe.catIds if pe.useCats else [-1])
        area_set = {tuple(a) for a in pe.areaRng}
        k_list = [n for n, k in enumerate(p.catIds) if k in cat_set]
        m_list = [m for m in p.maxDets if m in set(pe.maxDets)]
        a_list = [n for n, a in enumerate(p.areaRng) if tuple(a) in area_set]
        vid_set = set(pe.vidIds)
        i_list = [n for n, i in enumerate(p.vidIds) if i in vid_set]
        num_i0, num_a0 = len(pe.vidIds), len(pe.areaRng)
        for k, k0 in enumerate(k_list):
            for a, a0 in enumerate(a_list):
                base = k0 * num_a0 * num_i0 + a0 * num_i0
                evals = [self.evalImgs[base + i] for i in i_list]
                evals = [e for e in evals if e is not None]
                if not evals:
                    continue
                for m, max_det in enumerate(m_list):
                    self._accumulate_one(evals, max_det, rec_thrs, precision,
                                         recall, scores, (k, a, m))
        self.eval = {
            'params': p,
            'counts': [num_t, num_r, num_k, num_a, num_m],
            'date': datetime.datetime.now().strftime('%Y-%m-%d %H:%M:%S'),
            'precision': precision,
            'recall': recall,
            'scores': scores,
        }

    @staticmethod
    def _accumulate_one(evals: list, max_det: int, rec_thrs: np.ndarray,
                        precision: np.ndarray, recall: np.ndarray,
                        scores: np.ndarray, kam: tuple) -> None:
        k, a, m = kam
        dt_scores = np.concatenate([e['dtScores'][:max_det] for e in evals])
        order = np.argsort(-dt_scores, kind='mergesort')
        dt_scores = dt_scores[order]
        dtm = np.concatenate([e['dtMatches'][:, :max_det] for e in evals],
                             axis=1)[:, order]
        dt_ig = np.concatenate([e['dtIgnore'][:, :max_det] for e in evals],
                               axis=1)[:, order].astype(bool)
        gt_ig = np.concatenate([e['gtIgnore'] for e in evals])
        num_gt = np.count_nonzero(gt_ig == 0)
        if num_gt == 0:
            return
        matched = dtm != 0
        tp = np.cumsum(matched & ~dt_ig, axis=1, dtype=np.float64)
        fp = np.cumsum(~matched & ~dt_ig, axis=1, dtype=np.float64)
        num_dt = tp.shape[1]
        rc = tp / num_gt
        pr = tp / (fp + tp + np.spacing(1))
        recall[:, k, a, m] = rc[:, -1] if num_dt else 0
        if num_dt == 0:
            precision[:, :, k, a, m] = 0
            scores[:, :, k, a, m] = 0
            return
        # interpolated precision: max precision at any higher recall
        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
        for t in range(rc.shape[0]):
            idx = np.searchsorted(rc[t], rec_thrs, side='left')
            ok = idx < num_dt  # a prefix: recall thresholds never reached
            q = np.zeros(rec_thrs.size)
            s = np.zeros(rec_thrs.size)
            q[ok] = pr[t, idx[ok]]
            s[ok] = dt_scores[idx[ok]]
            precision[t, :, k, a, m] = q
            scores[t, :, k, a, m] = s


@METRICS.register_module()
class KNetYouTubeVISMetric(YouTubeVISMetric):
    """``YouTubeVISMetric`` whose AP computation runs on numpy 2.

    Same arguments and outputs as mmdet's metric (``youtube_vis/segm_mAP``
    ...); the printed COCO summary goes to the mmengine logger.
    """

    def compute_metrics(self, results: list) -> dict[str, float]:
        pred_chunks, gt_chunks = zip(*results)
        gt_results = self.format_gts(gt_chunks)
        pred_results = self.format_preds(pred_chunks)
        if self.format_only:
            self.save_pred_results(pred_results)
            return {}
        items = self.metric_items or [
            'mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l'
        ]
        unknown = [i for i in items if i not in YTVIS_METRIC_NAMES]
        if unknown:
            raise KeyError(f'metric item(s) {unknown} are not supported')
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            gt = YTVIS(gt_results)
            if pred_results:
                evaluator = KNetYTVISeval(gt, gt.loadRes(pred_results),
                                          'segm')
                evaluator.params.vidIds = gt.getVidIds()
                evaluator.evaluate()
                evaluator.accumulate()
                evaluator.summarize()
                stats = evaluator.stats
            else:  # nothing predicted: every AP / AR is 0
                stats = np.zeros(len(YTVIS_METRIC_NAMES))
        MMLogger.get_current_instance().info('\n' + log.getvalue())
        out = OrderedDict()
        for item in items:
            out[f'segm_{item}'] = float(
                f'{stats[YTVIS_METRIC_NAMES[item]]:.3f}')
        return out
