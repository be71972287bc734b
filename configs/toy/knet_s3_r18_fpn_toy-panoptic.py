# Panoptic K-Net on the built-in synthetic data; CPU, a few minutes.
_base_ = [
    './_base_/toy_knet_model.py', './_base_/synthetic_panoptic.py',
    './_base_/toy_det_runtime.py'
]
