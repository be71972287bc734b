# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Independent, straightforward re-statements of the official video scorers.

Written for the tests from the prose descriptions in
``shared/reference/video_ecosystem.md`` (section 4) and
``peers_and_ecosystem.md`` (sections 4.5, 4.6), not from ``knet`` code:

* :func:`deeplab2_stq` - deeplab2's numpy ``STQuality`` (whole frames).
* :func:`vipseg_stq_inputs` - ``eval_stq_vspw.py``: original 0..123 class
  order, segments numbered per video from 0 in order of first appearance
  over ``segments_info``, pixels outside segments 255 / 255.
* :func:`panopticapi_vpq` - ``eval_vpq_vspw.py`` / VPSNet ``eval_vpq``:
  for each ``nframes``, every window start ``0 .. len - nframes`` stacks the
  frames, panopticapi PQ rules with ``VOID = 0``, stats summed over all
  windows and videos, class mean over classes with tp + fp + fn > 0, VPQ the
  plain mean over the window sizes.

Everything loops over segments with dictionaries (slow, obvious); the
inputs are small generated videos.
"""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

VIPSEG_THINGS = (2, 4, 8, 10, 41, 43, 44, 46, 47, 48, 49, 50, 51, 52, 54, 55,
                 56, 60, 61, 62, 63, 64, 65, 72, 74, 76, 77, 78, 79, 82, 83,
                 84, 85, 86, 87, 88, 89, 90, 91, 92, 95, 96, 97, 99, 100, 101,
                 102, 106, 107, 108, 109, 114, 115, 116, 117, 118, 122, 123)
VIPSEG_STUFF = tuple(c for c in range(124) if c not in VIPSEG_THINGS)


# --------------------------------------------------------------------------
# STQ (deeplab2 STQuality)


def deeplab2_stq(videos, num_classes, things, ignore, shift=16):
    """STQ / AQ / IoU of ``{video: [(gt_sem, gt_ins, pred_sem, pred_ins)]}``.

    Semantic label ``ignore`` is void; thing pixels with GT instance 0 are
    crowd (removed from GT and prediction for AQ).
    """
    size = num_classes + 1 if ignore >= num_classes else num_classes
    things = set(things)
    total_conf = np.zeros((size, size))
    aq_sum, tubes = 0.0, 0
    for frames in videos.values():
        conf = np.zeros((size, size))
        gt_area, pr_area, inter = Counter(), Counter(), Counter()
        for gs, gi, ps, pi in frames:
            gs, gi, ps, pi = (np.asarray(a).ravel() for a in (gs, gi, ps, pi))
            gsm = np.where(gs == ignore, size - 1, gs)
            psm = np.where(ps == ignore, size - 1, ps)
            np.add.at(conf, (gsm, psm), 1)
            gt_thing = np.isin(gs, list(things))
            crowd = gt_thing & (gi == 0)
            gmask = gt_thing & ~crowd
            pmask = np.isin(ps, list(things)) & ~crowd
            gid = (gs << shift) + gi
            pid = (ps << shift) + pi
            for v, c in zip(*np.unique(gid[gmask], return_counts=True)):
                gt_area[v] += c
            for v, c in zip(*np.unique(pid[pmask], return_counts=True)):
                pr_area[v] += c
            both = gmask & pmask
            if both.any():
                pairs, counts = np.unique(
                    np.stack([gid[both], pid[both]], 1), axis=0,
                    return_counts=True)
                for (g, p), c in zip(pairs.tolist(), counts):
                    inter[g, p] += c
        for g, garea in gt_area.items():
            s = 0.0
            for (g2, p), tpa in inter.items():
                if g2 == g:
                    s += tpa * tpa / (garea + pr_area[p] - tpa)
            aq_sum += s / garea
        tubes += len(gt_area)
        total_conf += conf
    aq = aq_sum / tubes if tubes else 0.0
    conf = total_conf.copy()
    if ignore < num_classes:
        conf[ignore, :] = 0
    else:
        conf[size - 1, :] = 0
    ious = []
    for c in range(size):
        tp = conf[c, c]
        union = conf[c, :].sum() + conf[:, c].sum() - tp
        if union > 0:
            ious.append(tp / union)
    iou = float(np.mean(ious)) if ious else 0.0
    return {'STQ': float(np.sqrt(aq * iou)), 'AQ': float(aq), 'IoU': iou}


def vipseg_category(raw_value):
    """``create_panoptic_video_labels.py``: raw value -> 0-based class."""
    return raw_value - 1 if raw_value < 125 else raw_value // 100 - 1


def vipseg_stq_inputs(gt_raw, pred_cls, pred_ins):
    """One video of ``eval_stq_vspw.py`` inputs from raw GT panomasks and
    predictions (original class order, void 255).

    Segments of the GT are numbered from 0 over the video in order of first
    appearance, within a frame by ascending raw value (the order of its
    ``segments_info``); prediction segments likewise by (class, instance).
    """
    frames = []
    gt_num, pr_num = {}, {}
    for raw, pc, pi in zip(gt_raw, pred_cls, pred_ins):
        gs = np.full(raw.shape, 255, np.int64)
        gi = np.full(raw.shape, 255, np.int64)
        for v in np.unique(raw):
            if v == 0:
                continue
            gt_num.setdefault(int(v), len(gt_num))
            gs[raw == v] = vipseg_category(int(v))
            gi[raw == v] = gt_num[int(v)]
        ps = np.full(raw.shape, 255, np.int64)
        pj = np.full(raw.shape, 255, np.int64)
        keys = sorted({(int(c), int(i)) for c, i in zip(pc.ravel(),
                                                        pi.ravel())
                       if c != 255})
        for c, i in keys:
            pr_num.setdefault((c, i), len(pr_num))
            sel = (pc == c) & (pi == i)
            ps[sel] = c
            pj[sel] = pr_num[c, i]
        frames.append((gs, gi, ps, pj))
    return frames


# --------------------------------------------------------------------------
# VPQ (panopticapi rules on stacked windows)


def panopticapi_window(gt_ids, gt_cat, pr_ids, pr_cat, stats):
    """Add one (stacked) window's PQ stats; id 0 is VOID in both maps."""
    gt_area = Counter(dict(zip(*np.unique(gt_ids, return_counts=True))))
    pr_area = Counter(dict(zip(*np.unique(pr_ids, return_counts=True))))
    pairs, counts = np.unique(np.stack([gt_ids.ravel(), pr_ids.ravel()], 1),
                              axis=0, return_counts=True)
    inter = {(int(g), int(p)): int(c) for (g, p), c in zip(pairs, counts)}
    gt_matched, pr_matched = set(), set()
    for (g, p), i in inter.items():
        if g == 0 or p == 0 or gt_cat[g] != pr_cat[p]:
            continue
        union = pr_area[p] + gt_area[g] - i - inter.get((0, p), 0)
        iou = i / union
        if iou > 0.5:
            stats[gt_cat[g]]['tp'] += 1
            stats[gt_cat[g]]['iou'] += iou
            gt_matched.add(g)
            pr_matched.add(p)
    for g in gt_area:
        if g != 0 and g not in gt_matched:
            stats[gt_cat[g]]['fn'] += 1
    for p in pr_area:
        if p == 0 or p in pr_matched:
            continue
        if inter.get((0, p), 0) / pr_area[p] > 0.5:
            continue
        stats[pr_cat[p]]['fp'] += 1


def pq_average(stats, things):
    """panopticapi ``pq_average``: classes with tp + fp + fn > 0 only."""
    out = {}
    for name, sel in (('all', None), ('things', True), ('stuff', False)):
        pqs = []
        for c, s in stats.items():
            if sel is not None and (c in things) != sel:
                continue
            denom = s['tp'] + 0.5 * s['fp'] + 0.5 * s['fn']
            if denom == 0:
                continue
            pqs.append(s['iou'] / denom)
        out[name] = float(np.mean(pqs)) if pqs else 0.0  # official: 0/0
    return out


def panopticapi_vpq(videos, nframes_list, things, clip_short=False):
    """VPQ of ``[[(gt_ids, gt_cat, pr_ids, pr_cat) per frame] per video]``
    (``*_cat``: segment id -> class; id 0 = VOID). ``clip_short`` scores a
    video shorter than ``nframes`` as one window of all its frames (Video
    K-Net protocol of this port) instead of skipping it (official)."""
    per_k = {}
    for requested in nframes_list:
        stats = defaultdict(lambda: {'tp': 0, 'fp': 0, 'fn': 0, 'iou': 0.0})
        for frames in videos:
            nframes = min(requested, len(frames)) if clip_short else requested
            for idx in range(0, len(frames) - nframes + 1):
                win = frames[idx:idx + nframes]
                gt_cat, pr_cat = {}, {}
                for f in win:
                    gt_cat.update(f[1])
                    pr_cat.update(f[3])
                panopticapi_window(np.concatenate([f[0] for f in win]),
                                   gt_cat,
                                   np.concatenate([f[2] for f in win]),
                                   pr_cat, stats)
        per_k[requested] = pq_average(stats, set(things))
    return {
        'VPQ': float(np.mean([v['all'] for v in per_k.values()])),
        'VPQ_th': float(np.mean([v['things'] for v in per_k.values()])),
        'VPQ_st': float(np.mean([v['stuff'] for v in per_k.values()])),
        'per_k': per_k,
    }


def step_vpq_frame(gc, gi, pc, pi, void=255):
    """STEP maps -> (gt_ids, gt_cat, pr_ids, pr_cat): id = class * 2**16 +
    instance + 1, GT class ``void`` -> VOID 0, predicted ``void``
    unlabelled (0)."""
    def ids(c, i):
        out = np.where(c == void, 0, c * 65536 + i + 1)
        cats = {int(v): int((v - 1) // 65536) for v in np.unique(out)
                if v != 0}
        return out, cats
    g, gcat = ids(np.asarray(gc), np.asarray(gi))
    p, pcat = ids(np.asarray(pc), np.asarray(pi))
    return g, gcat, p, pcat


def vipseg_vpq_frame(raw, pc, pi):
    """VIP-Seg raw GT + predictions in original class order -> VPQ frame
    (GT segment id = raw value, category from ``vipseg_category``)."""
    gcat = {int(v): vipseg_category(int(v)) for v in np.unique(raw) if v}
    p = np.where(pc == 255, 0, pc * 65536 + pi + 1)
    pcat = {int(v): int((v - 1) // 65536) for v in np.unique(p) if v != 0}
    return raw.astype(np.int64), gcat, p, pcat
