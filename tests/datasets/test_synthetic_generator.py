# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Generator: determinism, files, parameters, difficulty, meta.json, CLI."""
import hashlib
import json
import os
import subprocess
import sys

import mmcv
import numpy as np
import pytest

from knet.datasets.synthetic import (SYNTHETIC_THING_CLASSES, SceneConfig,
                                     generate, is_up_to_date, render_image,
                                     resolve_params)
from knet.datasets.synthetic.classes import class_colour
from knet.datasets.synthetic.fileio import encode_png, rle_uncompressed
from knet.datasets.synthetic.formats.common import sample_rng

REPO_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(REPO_ROOT, 'tools', 'generate_synthetic_data.py')


def _digest(folder):
    """relative path -> sha1 of every file below ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob('*')) if p.is_file()
    }


def test_same_seed_identical_bytes_other_seed_differs(tmp_path, synthetic_root,
                                                      small_generator):
    """Same seed => identical bytes; another seed => different files."""
    small_generator(tmp_path / 'a', seed=0)
    small_generator(tmp_path / 'b', seed=1)
    ref = _digest(synthetic_root)
    assert _digest(tmp_path / 'a') == ref and len(ref) > 150
    other = _digest(tmp_path / 'b')
    assert other.keys() == ref.keys()
    changed = [k for k in ref if k.endswith('.png') and ref[k] != other[k]]
    assert len(changed) > 0.95 * sum(k.endswith('.png') for k in ref)
    assert ref['coco/annotations/panoptic_train.json'] != other[
        'coco/annotations/panoptic_train.json']


def test_samples_do_not_depend_on_split_size(tmp_path):
    """Growing a split leaves the existing samples byte-identical."""
    small = generate(
        'ade', tmp_path / 's', num_train=2, num_val=1, progress=False)
    big = generate(
        'ade', tmp_path / 'b', num_train=4, num_val=1, progress=False)
    for rel in ('images/training/000001.png',
                'annotations/training/000001.png',
                'annotations/validation/000000.png'):
        assert (small / rel).read_bytes() == (big / rel).read_bytes()


@pytest.mark.parametrize('shape,dtype', [((17, 23, 3), np.uint8),
                                         ((9, 31), np.uint8),
                                         ((12, 5), np.uint16)])
def test_png_encoder_round_trip(tmp_path, shape, dtype):
    """Our minimal PNG encoder decodes (via OpenCV) to the exact array."""
    arr = np.random.default_rng(0).integers(
        0, np.iinfo(dtype).max, shape, dtype=dtype)
    path = tmp_path / 'x.png'
    path.write_bytes(encode_png(arr))
    back = mmcv.imread(str(path), flag='unchanged', channel_order='rgb')
    if arr.ndim == 3:
        back = back[..., ::-1]  # 'unchanged' keeps OpenCV's BGR order
    assert back.dtype == dtype and np.array_equal(back, arr)
    assert encode_png(arr) == encode_png(arr.copy())


def test_uncompressed_rle_matches_pycocotools():
    """Own uncompressed RLE decodes to the mask with pycocotools."""
    from pycocotools import mask as mask_utils
    mask = np.zeros((7, 5), bool)
    mask[0, 0] = mask[3:6, 1:4] = True
    rle = rle_uncompressed(mask)
    assert np.array_equal(
        mask_utils.decode(mask_utils.frPyObjects(rle, 7, 5)).astype(bool),
        mask)


def test_scene_properties_default_difficulty():
    """Default scenes: 1-6 things of >= 12 px, stuff present."""
    cfg = SceneConfig()
    counts = []
    for i in range(30):
        scene = render_image(sample_rng(0, 'test', 'scene', i), cfg)
        assert scene.image.shape == (128, 128,
                                     3) and scene.image.dtype == np.uint8
        things = [(s, m) for s, m in scene.iter_masks()
                  if s.isthing and not s.iscrowd]
        counts.append(len(things))
        for _, m in things:
            ys, xs = np.nonzero(m)
            assert max(np.ptp(ys), np.ptp(xs)) + 1 >= 12
        assert any(not s.isthing for s, _ in scene.iter_masks())
    assert min(counts) >= 1 and max(counts) <= 6 and np.mean(counts) >= 2.5


def _colour_accuracy(difficulty):
    """Nearest-class-colour accuracy on thing instances (learnability)."""
    cfg = SceneConfig(difficulty=difficulty)
    palette = np.array([class_colour(n) for n in SYNTHETIC_THING_CLASSES],
                       np.float64)
    hits = total = 0
    for i in range(40):
        scene = render_image(
            sample_rng(0, 'test', f'colour{difficulty}', i), cfg)
        for seg, mask in scene.iter_masks():
            if seg.isthing and not seg.iscrowd:
                mean = scene.image[mask].mean(axis=0)
                pred = np.argmin(((palette - mean)**2).sum(axis=1))
                hits += SYNTHETIC_THING_CLASSES[pred] == seg.name
                total += 1
    return hits / total


def test_difficulty_knob():
    """Default things are colour-coded; difficulty=1 weakens that cue."""
    easy, hard = _colour_accuracy(0.0), _colour_accuracy(1.0)
    assert easy > 0.9
    assert hard < easy - 0.15
    assert SceneConfig(
        difficulty=1.0).extent_range[0] < SceneConfig().extent_range[0]
    with pytest.raises(ValueError):
        SceneConfig(difficulty=2.0)


def test_parameter_validation():
    """Unknown tasks / parameters / classes are rejected."""
    with pytest.raises(ValueError):
        resolve_params('cityscapes')
    with pytest.raises(TypeError):
        resolve_params('coco', num_frames=4)
    with pytest.raises(ValueError):
        resolve_params('coco', thing_classes=['unicorn'])
    p = resolve_params(
        'step', seed=3, size=(64, 96), thing_classes=['disk', 'ring'])
    assert p['size'] == [
        64, 96
    ] and p['num_frames'] == 8 and p['thing_classes'] == ['disk', 'ring']


def test_class_subset(tmp_path):
    """A class subset gives exactly those json categories."""
    root = generate(
        'panoptic',
        tmp_path,
        num_train=3,
        num_val=1,
        thing_classes=['disk', 'star'],
        stuff_classes=['sky', 'grass'],
        progress=False)
    pan = json.loads((root / 'annotations/panoptic_train.json').read_text())
    assert [c['name']
            for c in pan['categories']] == ['disk', 'star', 'sky', 'grass']
    used = {
        s['category_id']
        for a in pan['annotations']
        for s in a['segments_info']
    }
    assert used <= {c['id'] for c in pan['categories']}


def test_skip_regenerate_and_meta(tmp_path):
    """Skip if up to date; regenerate on bad meta, lost file, new params."""
    kw = dict(num_train=2, num_val=1, num_frames=3, progress=False)
    root = generate('vspw', tmp_path, **kw)
    meta_path = root / 'meta.json'
    meta = json.loads(meta_path.read_text())
    assert meta['params']['num_train'] == 2 and meta[
        'num_files'] == 3 * 3 * 2 + 3
    frame = root / 'data/video0000/origin/00000000.png'
    stamp = frame.stat().st_mtime_ns
    generate('vspw', tmp_path, **kw)
    assert frame.stat().st_mtime_ns == stamp  # skipped: untouched

    meta_path.write_text('{not json')  # corrupted meta => regenerate
    assert not is_up_to_date(
        'vspw', tmp_path, num_train=2, num_val=1, num_frames=3)
    generate('vspw', tmp_path, **kw)
    assert json.loads(meta_path.read_text()) == meta
    assert frame.stat().st_mtime_ns != stamp

    frame.unlink()  # a missing file => regenerate
    generate('vspw', tmp_path, **kw)
    assert frame.exists()

    generate('vspw', tmp_path,
             **dict(kw, num_train=3))  # other parameters => regenerate
    assert json.loads(meta_path.read_text())['params']['num_train'] == 3
    assert (root / 'data/video0002').is_dir() and len(
        (root / 'train.txt').read_text().split()) == 3
    # no staging folders left behind; only the (empty) lock file
    assert [p.name for p in tmp_path.glob('.vspw.*')] == ['.vspw.lock']


def test_refuses_foreign_folder_and_cleans_stale_staging(tmp_path):
    """Foreign folders need force; dead staging folders are removed."""
    (tmp_path / 'ade').mkdir()
    (tmp_path / 'ade' / 'precious.txt').write_text('x')
    with pytest.raises(FileExistsError):
        generate('ade', tmp_path, num_train=1, num_val=1, progress=False)
    stale = tmp_path / '.ade.partial-999999999'
    (stale / 'images').mkdir(parents=True)
    generate(
        'ade', tmp_path, num_train=1, num_val=1, progress=False, force=True)
    assert not (tmp_path / 'ade' / 'precious.txt').exists() and (
        tmp_path / 'ade/meta.json').exists()
    assert not stale.exists()


def test_cli_generates_then_skips(tmp_path):
    """The CLI generates, reports, and skips an up-to-date second run."""
    cmd = [
        sys.executable, CLI, '--out',
        str(tmp_path), '--tasks', 'coco', 'panoptic', 'step', '--num-train',
        '2', '--num-val', '1', '--num-frames', '3', '--size', '64', '96',
        '--quiet'
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert '[generated] coco' in first.stdout
    assert '[generated] step' in first.stdout
    meta = json.loads((tmp_path / 'coco/meta.json').read_text())
    assert meta['params']['size'] == [64, 96
                                      ] and 'num_frames' not in meta['params']
    assert (tmp_path / 'coco/annotations/panoptic_train.json').exists()
    assert len(
        list((tmp_path /
              'step/video_sequence/train').glob('*_panoptic.png'))) == 2 * 3
    # another process, same parameters => the same bytes as in this process
    same = generate(
        'step',
        tmp_path / 'inproc',
        num_train=2,
        num_val=1,
        num_frames=3,
        size=(64, 96),
        progress=False)
    assert _digest(same) == _digest(tmp_path / 'step')
    before = {
        p: p.stat().st_mtime_ns
        for p in tmp_path.rglob('*') if p.is_file()
    }
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert '[skipped] coco' in second.stdout
    assert '[skipped] step' in second.stdout
    assert {
        p: p.stat().st_mtime_ns
        for p in tmp_path.rglob('*') if p.is_file()
    } == before
