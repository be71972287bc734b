# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Deterministic synthetic datasets in real on-disk formats.

COCO instance, COCO panoptic, ADE20K, KITTI-STEP, YouTube-VIS and VSPW
layouts, so K-Net trains and evaluates with no download and no GPU::

    from knet.datasets.synthetic import generate_all, get_metainfo
    generate_all('data/synthetic', seed=0)  # or the CLI, see tools/
    metainfo = get_metainfo('panoptic')     # classes, thing/stuff, palette

Only numpy is needed to import this package (pycocotools and tqdm are
imported lazily when writing), so configs can import the constants cheaply.

Default layout under ``data/synthetic`` (details in ``formats/*.py``)::

    coco/{train,val}/*.png                             tasks coco + panoptic
    coco/annotations/instances_{train,val}.json
    coco/annotations/panoptic_{train,val}.json
    coco/annotations/panoptic_{train,val}/*.png
    ade/{images,annotations}/{training,validation}/*.png          task ade
    step/video_sequence/{train,val}/
        {seq:06d}_{frame:06d}_{leftImg8bit,panoptic}.png          task step
    ytvis/{train,valid}/JPEGImages/<video>/*.png                 task ytvis
    ytvis/annotations/{train,valid}.json                (official format)
    ytvis/annotations/youtube_vis_2019_{train,valid}.json       (CocoVID)
    vspw/data/<video>/{origin,mask}/*.png, vspw/{train,val}.txt  task vspw
    <unit>/meta.json                    parameters; written last
"""
from .api import (DEFAULT_OUT_DIR, FORMAT_VERSION, TASK_DEFAULTS, TASKS,
                  VIDEO_TASKS, generate, generate_all, generate_with_status,
                  is_complete, is_up_to_date, resolve_params, task_dir,
                  unit_lock)
from .classes import (STEP_VOID, SYNTHETIC_CLASSES, SYNTHETIC_PALETTE,
                      SYNTHETIC_SEMANTIC_CLASSES, SYNTHETIC_SEMANTIC_PALETTE,
                      SYNTHETIC_STEP_THING_IDS, SYNTHETIC_STUFF_CLASSES,
                      SYNTHETIC_STUFF_PALETTE, SYNTHETIC_THING_CLASSES,
                      SYNTHETIC_THING_PALETTE, category_id, get_metainfo)
from .formats.step import decode_step, encode_step
from .scene import Scene, SceneConfig, Segment, render_image, render_video

__all__ = [
    'DEFAULT_OUT_DIR', 'FORMAT_VERSION', 'TASK_DEFAULTS', 'TASKS',
    'VIDEO_TASKS', 'generate', 'generate_all', 'generate_with_status',
    'is_complete', 'is_up_to_date', 'resolve_params', 'task_dir', 'unit_lock', 'STEP_VOID', 'SYNTHETIC_CLASSES',
    'SYNTHETIC_PALETTE', 'SYNTHETIC_SEMANTIC_CLASSES',
    'SYNTHETIC_SEMANTIC_PALETTE', 'SYNTHETIC_STEP_THING_IDS',
    'SYNTHETIC_STUFF_CLASSES', 'SYNTHETIC_STUFF_PALETTE',
    'SYNTHETIC_THING_CLASSES', 'SYNTHETIC_THING_PALETTE', 'category_id',
    'get_metainfo', 'decode_step', 'encode_step', 'Scene', 'SceneConfig',
    'Segment', 'render_image', 'render_video'
]
