# COCO instance K-Net (R-50, multi-scale 3x) at the path of Video K-Net's
# README: the pre-training of the YouTube-VIS models (spec
# video_knet_spec.md §7.1 #5). Same model and schedule as the image
# K-Net config it inherits (RepeatDataset x3, 12 epochs, steps [9, 11],
# 2 images per GPU).
_base_ = '../knet/knet_s3_r50_fpn_ms-3x_coco.py'
