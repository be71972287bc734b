# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""The README's main job, end to end with 2 training iterations per task:
data generation, the four toy configs (panoptic, instance, semantic, VPS),
runner.test(), overlays and summary.json (the metric values are those of
barely trained models)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


@pytest.mark.slow
def test_quickstart_writes_summary_and_overlays(tmp_path):
    work_dir = tmp_path / 'work'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [
            sys.executable, 'tools/quickstart.py', '--iters', '2',
            '--data-root', str(tmp_path / 'data'), '--work-dir',
            str(work_dir), '--num-vis', '1'
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((work_dir / 'summary.json').read_text())
    assert set(summary) == {'panoptic', 'instance', 'semantic', 'vps'}
    for task, key in (('panoptic', 'PQ'), ('instance', 'mask_AP'),
                      ('semantic', 'mIoU')):
        value = summary[task][key]
        assert isinstance(value, float) and 0.0 <= value <= 100.0, summary
    for key in ('STQ', 'AQ', 'SQ', 'VPQ'):
        value = summary['vps'][key]
        assert isinstance(value, float) and 0.0 <= value <= 1.0, summary
    drawn = os.listdir(work_dir / 'vis')
    for task in ('panoptic', 'instance', 'semantic', 'vps'):
        assert any(name.startswith(task) for name in drawn), drawn


def test_video_data_regenerated_with_the_config_parameters(tmp_path):
    """A step folder left with other parameters (an older quickstart) is
    replaced by the config's data, so the reported scores are comparable;
    training alone would keep it (keep_complete)."""
    import importlib.util

    from mmengine.config import Config

    from knet.datasets.synthetic import generate
    spec = importlib.util.spec_from_file_location(
        'quickstart', os.path.join(ROOT, 'tools', 'quickstart.py'))
    quickstart = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quickstart)
    small = dict(num_val=1, num_frames=2, size=(32, 48))
    generate('step', tmp_path, 0, progress=False, num_train=1, **small)
    cfg = Config(dict(synthetic_data=dict(task='step', seed=0, num_train=2,
                                          **small)))
    quickstart.ensure_config_data(cfg, str(tmp_path))
    meta = json.loads((tmp_path / 'step' / 'meta.json').read_text())
    assert meta['params']['num_train'] == 2
    frames = list((tmp_path / 'step/video_sequence/train').glob('*.png'))
    assert len(frames) == 2 * 2 * 2  # videos x frames x (image, label)
