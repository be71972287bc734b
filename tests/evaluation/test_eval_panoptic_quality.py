# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""COCO PQ (hotcoco): hand-computed rules, errors, panopticapi agreement."""
import contextlib
import io
import json
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from knet.evaluation import (PQStat, id2rgb, pq_compute, pq_image_stats,
                             pq_results, rgb2id)
from knet.evaluation import panoptic_quality
from knet.evaluation._utils import count_pairs, read_png

CATS = {
    1: {'id': 1, 'name': 'a', 'isthing': 1},
    2: {'id': 2, 'name': 'b', 'isthing': 1},
    3: {'id': 3, 'name': 's', 'isthing': 0},
    4: {'id': 4, 'name': 'never', 'isthing': 0},
}


def seg(i, cat, crowd=0, area=None):
    out = {'id': i, 'category_id': cat, 'iscrowd': crowd}
    if area is not None:
        out['area'] = area
    return out


def stats(gt, pred, gt_segs, pred_segs):
    gt = np.asarray([gt])
    pred = np.asarray([pred])
    for s in gt_segs:  # JSON areas as a dataset would store them
        s.setdefault('area', int((gt == s['id']).sum()))
    return pq_image_stats(gt, pred, gt_segs, pred_segs, CATS)


def counts(stat, cat):
    c = stat[cat]
    return c.tp, c.fp, c.fn, c.iou


def write_single_image(root, gt, pred, gt_segs, pred_segs):
    """A one-image COCO-panoptic set for cross-checking with panopticapi."""
    os.makedirs(os.path.join(root, 'gt'), exist_ok=True)
    os.makedirs(os.path.join(root, 'pred'), exist_ok=True)
    gt = np.asarray([gt])
    pred = np.asarray([pred])
    Image.fromarray(id2rgb(gt)).save(os.path.join(root, 'gt', 'x.png'))
    Image.fromarray(id2rgb(pred)).save(os.path.join(root, 'pred', 'x.png'))
    ann = {'image_id': 7, 'file_name': 'x.png'}
    with open(os.path.join(root, 'gt.json'), 'w') as f:
        json.dump({'annotations': [dict(ann, segments_info=gt_segs)],
                   'categories': list(CATS.values())}, f)
    with open(os.path.join(root, 'pred.json'), 'w') as f:
        json.dump({'annotations': [dict(ann, segments_info=pred_segs)]}, f)
    return [os.path.join(root, p) for p in ('gt.json', 'pred.json', 'gt',
                                            'pred')]


def panopticapi_compute(files):
    pe = pytest.importorskip('panopticapi.evaluation')
    with contextlib.redirect_stdout(io.StringIO()):
        return pe.pq_compute(*files)


def assert_same(ours, ref, tol=1e-9):
    for key in ('All', 'Things', 'Stuff'):
        for m in ('pq', 'sq', 'rq', 'n'):
            assert ours[key][m] == pytest.approx(ref[key][m], abs=tol), (key,
                                                                         m)
    assert set(ours['per_class']) == set(ref['per_class'])
    for cat, vals in ref['per_class'].items():
        for m in ('pq', 'sq', 'rq'):
            assert ours['per_class'][cat][m] == pytest.approx(vals[m],
                                                              abs=tol)


# --------------------------------------------------------------------------
# hand-computed cases


def test_void_is_left_out_of_the_union():
    # 4 px GT segment next to 4 px VOID; the prediction covers all 8 px.
    # union = 4 + 8 - 4 - 4 (pred on void) = 4 -> IoU 1.0 (0.5 otherwise)
    st = stats([10] * 4 + [0] * 4, [20] * 8, [seg(10, 1)], [seg(20, 1)])
    assert counts(st, 1) == (1, 0, 0, 1.0)


def test_iou_must_exceed_one_half():
    st = stats([10] * 4, [20, 20, 30, 30], [seg(10, 1)],
               [seg(20, 1), seg(30, 1)])
    assert counts(st, 1) == (0, 2, 1, 0.0)


def test_stuff_partial_overlap_iou_value():
    st = stats([12] * 6, [23] * 5 + [0], [seg(12, 3)], [seg(23, 3)])
    tp, fp, fn, iou = counts(st, 3)
    assert (tp, fp, fn) == (1, 0, 0)
    assert iou == pytest.approx(5 / 6)
    res = pq_results(st, CATS)
    assert res['All']['n'] == 1  # categories 1, 2, 4 have no tp/fp/fn
    assert res['All']['pq'] == pytest.approx(5 / 6)
    assert res['Things'] == {'pq': 0.0, 'sq': 0.0, 'rq': 0.0, 'n': 0}
    assert res['per_class'][4] == {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}


def test_crowd_rules(tmp_path):
    # GT: 10 (cat 1) | crowd 11 (cat 1) x4 | 12 (stuff cat 3) x2
    gt = [10, 10, 11, 11, 11, 11, 12, 12]
    # pred 20 = 10; pred 21 (cat 1) lies on the cat-1 crowd -> ignored;
    # pred 22 (cat 2) has no crowd of its class -> false positive
    pred = [20, 20, 21, 21, 21, 22, 22, 22]
    gt_segs = [seg(10, 1), seg(11, 1, crowd=1), seg(12, 3)]
    pred_segs = [seg(20, 1), seg(21, 1), seg(22, 2)]
    st = stats(gt, pred, gt_segs, pred_segs)
    assert counts(st, 1) == (1, 0, 0, 1.0)  # crowd is never a FN
    assert counts(st, 2) == (0, 1, 0, 0.0)
    assert counts(st, 3) == (0, 0, 1, 0.0)
    res = pq_results(st, CATS)
    assert res['All']['pq'] == pytest.approx(1 / 3)
    assert res['Things']['pq'] == pytest.approx(1 / 2)
    assert res['Stuff']['pq'] == 0.0
    files = write_single_image(str(tmp_path), gt, pred, gt_segs, pred_segs)
    assert_same(pq_compute(*files), panopticapi_compute(files))


def test_only_last_crowd_segment_of_a_class_counts(tmp_path):
    # two crowd regions of class 1: panopticapi keeps the last one only, so
    # a prediction on the first crowd region is a false positive
    # (a stuff segment keeps panopticapi's Stuff average defined)
    gt = [11] * 4 + [12] * 4 + [13] * 2
    pred = [20] * 4 + [21] * 4 + [23] * 2
    gt_segs = [seg(11, 1, crowd=1), seg(12, 1, crowd=1), seg(13, 3)]
    pred_segs = [seg(20, 1), seg(21, 1), seg(23, 3)]
    st = stats(gt, pred, gt_segs, pred_segs)
    assert counts(st, 1) == (0, 1, 0, 0.0)
    assert counts(st, 3) == (1, 0, 0, 1.0)
    files = write_single_image(str(tmp_path), gt, pred, gt_segs, pred_segs)
    assert_same(pq_compute(*files), panopticapi_compute(files))


def test_false_positive_mostly_on_void_is_ignored():
    gt = [0, 0, 0, 10, 0, 0, 10, 10, 10, 10]
    # pred 20: 3 of 4 px on VOID -> ignored; pred 21: exactly half -> FP
    pred = [20, 20, 20, 20, 21, 21, 21, 21, 0, 0]
    st = stats(gt, pred, [seg(10, 1)], [seg(20, 2), seg(21, 2)])
    assert counts(st, 2) == (0, 1, 0, 0.0)
    assert counts(st, 1) == (0, 0, 1, 0.0)


def test_empty_prediction():
    st = stats([10, 10, 12, 12], [0, 0, 0, 0], [seg(10, 1), seg(12, 3)], [])
    res = pq_results(st, CATS)
    assert res['All'] == {'pq': 0.0, 'sq': 0.0, 'rq': 0.0, 'n': 2}
    assert counts(st, 1) == (0, 0, 1, 0.0)


def test_gt_area_comes_from_json():
    # panopticapi trusts the GT json area: 6 instead of the 4 PNG pixels
    # gives union 6 + 4 - 4 = 6 and IoU 4/6
    st = stats([10] * 4, [20] * 4, [seg(10, 1, area=6)], [seg(20, 1)])
    assert counts(st, 1)[3] == pytest.approx(4 / 6)


def test_pqstat_accumulates_and_averages():
    a = stats([10] * 4, [20] * 4, [seg(10, 1)], [seg(20, 1)])
    b = stats([10] * 4, [0] * 4, [seg(10, 1)], [])
    total = PQStat()
    total += a
    total += b
    assert counts(total, 1) == (1, 0, 1, 1.0)
    res, per_class = total.pq_average(CATS, isthing=True)
    # PQ = 1 / (1 + 0.5 * 1) = 2/3, SQ = 1, RQ = 2/3
    assert res == pytest.approx({'pq': 2 / 3, 'sq': 1.0, 'rq': 2 / 3,
                                 'n': 1})
    assert per_class[2] == {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}


# --------------------------------------------------------------------------
# errors name the offending file / ids


def test_unknown_png_segment_raises():
    with pytest.raises(ValueError, match=r'cell 3: .*\b99\b.*in the PNG but '
                       'not in segments_info'):
        pq_image_stats(np.array([[10, 10]]), np.array([[20, 99]]),
                       [seg(10, 1, area=2)], [seg(20, 1)], CATS,
                       where='cell 3')


def test_json_segment_missing_from_png_raises():
    with pytest.raises(ValueError, match=r'\b30\b.*not in the mask'):
        stats([10, 10], [20, 20], [seg(10, 1)], [seg(20, 1), seg(30, 1)])


def test_unknown_category_raises():
    with pytest.raises(ValueError, match=r'unknown category_id 77'):
        stats([10, 10], [20, 20], [seg(10, 1)], [seg(20, 77)])


def test_errors_name_the_file(tmp_path):
    files = write_single_image(str(tmp_path), [10, 10], [20, 99],
                               [seg(10, 1, area=2)], [seg(20, 1)])
    with pytest.raises(ValueError, match=r'pred.x\.png.*\b99\b.*in the PNG'):
        pq_compute(*files)
    with open(files[1], 'w') as f:  # JSON segment 30 missing from the PNG
        json.dump({'annotations': [{'image_id': 7, 'file_name': 'x.png',
                                    'segments_info': [seg(20, 1), seg(99, 1),
                                                      seg(30, 1)]}]}, f)
    with pytest.raises(ValueError, match=r'pred.x\.png.*\b30\b.*not in the'):
        pq_compute(*files)
    os.remove(os.path.join(files[3], 'x.png'))
    with pytest.raises(FileNotFoundError, match=r'pred.x\.png'):
        pq_compute(*files)
    with open(files[1], 'w') as f:
        json.dump({'annotations': []}, f)
    with pytest.raises(KeyError, match='no prediction for the image with id '
                       '7'):
        pq_compute(*files)
    with open(files[1], 'w') as f:
        f.write('{"annotations": [')
    with pytest.raises(ValueError, match=r'pred\.json: not valid JSON'):
        pq_compute(*files)


def test_size_mismatch_raises(tmp_path):
    files = write_single_image(str(tmp_path), [10, 10], [20, 20],
                               [seg(10, 1, area=2)], [seg(20, 1)])
    Image.fromarray(id2rgb(np.full((2, 2), 20))).save(
        os.path.join(files[3], 'x.png'))
    with pytest.raises(ValueError, match=r'pred.x\.png: prediction size '
                       r'\(2, 2\) differs.*gt.x\.png size \(1, 2\)'):
        pq_compute(*files)


def test_png_size_differs_from_the_json_images_entry(tmp_path):
    files = write_single_image(str(tmp_path), [10, 10], [20, 20],
                               [seg(10, 1, area=2)], [seg(20, 1)])
    gt = json.load(open(files[0]))
    gt['images'] = [{'id': 7, 'file_name': 'x.jpg', 'height': 2,
                     'width': 2}]
    with open(files[0], 'w') as f:
        json.dump(gt, f)
    with pytest.raises(ValueError, match=r'gt.x\.png: PNG size \(1, 2\) '
                       r'differs from the GT json images entry.*\(2, 2\)'):
        pq_compute(*files)
    gt['images'][0].update(height=1, width=2)
    with open(files[0], 'w') as f:
        json.dump(gt, f)
    assert pq_compute(*files)['All']['pq'] == 1.0


def _png(width, height, depth=8, colour=2, rows=b''):
    """A PNG with the given header fields (IDAT ``rows`` as given)."""
    def chunk(kind, body):
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack('>I', len(body)) + kind + body + struct.pack(
            '>I', crc)
    ihdr = struct.pack('>IIBBBBB', width, height, depth, colour, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) +
            chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))


@pytest.mark.parametrize('case', ['truncated', 'garbage', 'empty',
                                  'oversized', 'both_oversized', '16bit',
                                  'grey', 'bad_crc'])
def test_malformed_pngs_give_an_error_naming_the_file(tmp_path, case):
    """Never a crash: a header claiming 100000 x 100000 pixels made hotcoco
    abort the process on the failed allocation before it was checked."""
    files = write_single_image(str(tmp_path), [10, 10, 0, 10],
                               [20, 20, 20, 0], [seg(10, 1, area=3)],
                               [seg(20, 1)])
    gt_png = os.path.join(files[2], 'x.png')
    pred_png = os.path.join(files[3], 'x.png')
    data = open(pred_png, 'rb').read()
    huge = _png(100000, 100000, rows=b'\0' * 13)
    bad = {
        'truncated': data[:-20],
        'garbage': b'not a png at all, just some text',
        'empty': b'',
        'oversized': huge,
        'both_oversized': huge,
        '16bit': _png(4, 1, depth=16, rows=b'\0' + bytes(24)),
        'grey': _png(4, 1, colour=0, rows=b'\0' + bytes(4)),
        'bad_crc': data[:29] + bytes([data[29] ^ 1]) + data[30:],
    }[case]
    with open(pred_png, 'wb') as f:
        f.write(bad)
    if case == 'both_oversized':  # same size on both sides: the limit
        with open(gt_png, 'wb') as f:
            f.write(huge)
        with pytest.raises(ValueError, match=r'100000x100000.*MAX_PIXELS.*'
                           r'gt.x\.png'):
            pq_compute(*files)
        return
    with pytest.raises(ValueError, match=r'pred.x\.png'):
        pq_compute(*files)
    assert panoptic_quality.png_size(gt_png) == (1, 4)


def test_no_c_source_and_no_ctypes_in_the_evaluation_package():
    folder = os.path.dirname(panoptic_quality.__file__)
    for root, _, names in os.walk(folder):
        for name in names:
            assert not name.endswith(('.c', '.h', '.so', '.pyx')), name
            if name.endswith('.py'):
                text = open(os.path.join(root, name)).read()
                assert 'ctypes' not in text, name


# --------------------------------------------------------------------------
# agreement with panopticapi on random data


def test_matches_panopticapi(coco_sets):
    for paths in coco_sets:
        files = (paths['gt_json'], paths['pred_json'], paths['gt_folder'],
                 paths['pred_folder'])
        ref = panopticapi_compute(files)
        ours = pq_compute(*files)
        assert_same(ours, ref)
        assert 0.2 < ours['All']['pq'] < 0.9  # non-trivial data


def test_synthetic_data_exercises_crowd_void_and_wrong_class(coco_sets):
    gt = json.load(open(coco_sets[0]['gt_json']))
    pred = json.load(open(coco_sets[0]['pred_json']))
    crowd = sum(s['iscrowd'] for a in gt['annotations']
                for s in a['segments_info'])
    assert crowd > 0
    wrong_class = void = 0
    for gt_ann, pred_ann in zip(gt['annotations'], pred['annotations']):
        gt_ids = rgb2id(read_png(os.path.join(coco_sets[0]['gt_folder'],
                                              gt_ann['file_name'])))
        pred_ids = rgb2id(read_png(os.path.join(coco_sets[0]['pred_folder'],
                                                pred_ann['file_name'])))
        void += int((gt_ids == 0).sum())
        gt_cat = {s['id']: s['category_id'] for s in gt_ann['segments_info']}
        pred_cat = {
            s['id']: s['category_id'] for s in pred_ann['segments_info']
        }
        g, p, c = count_pairs(gt_ids, pred_ids)
        big = (g != 0) & (p != 0) & (c > 20)  # clear overlaps only
        wrong_class += sum(gt_cat[a] != pred_cat[b]
                           for a, b in zip(g[big].tolist(), p[big].tolist()))
    assert void > 0 and wrong_class > 0


# --------------------------------------------------------------------------
# helpers


@pytest.mark.parametrize('blocky', [True, False])
def test_count_pairs_matches_bruteforce(rng, blocky):
    if blocky:
        a = np.repeat(rng.integers(0, 5, size=(30, 4)), 8, axis=1)
        b = np.repeat(rng.integers(0, 3, size=(30, 2)), 16, axis=1)
    else:
        a = rng.integers(0, 5, size=(30, 32))
        b = rng.integers(0, 3, size=(30, 32))
    ga, gb, cnt = count_pairs(a.astype(np.uint32), b.astype(np.uint32))
    pairs, ref = np.unique(np.stack([a.ravel(), b.ravel()], 1), axis=0,
                           return_counts=True)
    np.testing.assert_array_equal(np.stack([ga, gb], 1), pairs)
    np.testing.assert_array_equal(cnt, ref)
    big = count_pairs(a.astype(np.int64) + 2**40, b)
    np.testing.assert_array_equal(big[0], pairs[:, 0] + 2**40)
    np.testing.assert_array_equal(big[2], ref)


def test_rgb_id_round_trip(tmp_path, rng):
    ids = rng.integers(0, 2**24, size=(5, 7))
    np.testing.assert_array_equal(rgb2id(id2rgb(ids)), ids)
    path = str(tmp_path / 'a.png')
    Image.fromarray(id2rgb(ids)).save(path)
    np.testing.assert_array_equal(rgb2id(read_png(path)), ids)


@pytest.mark.parametrize('case', ['truncated', 'garbage', 'oversized'])
def test_read_png_errors_name_the_file(tmp_path, rng, case):
    """The video metrics' PNG reader (OpenCV) fails with the file name."""
    path = str(tmp_path / 'frame.png')
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(path)
    data = open(path, 'rb').read()
    bad = {'truncated': data[:len(data) // 2], 'garbage': b'GIF89a',
           'oversized': _png(100000, 100000, rows=b'\0' * 13)}[case]
    with open(path, 'wb') as f:
        f.write(bad)
    with pytest.raises(ValueError, match=r'Cannot decode image file.*'
                       r'frame\.png'):
        read_png(path)
