# The paper's "toy Video K-Net" on the synthetic STEP data: the same model
# and training, but no kernel linking and no association embedding; at test
# the raw last-stage thing kernels are the tracker's embeddings. Compare its
# AQ with video_knet_s3_r18_toy-vps.py (the learned association must pay
# off).
_base_ = ['./video_knet_s3_r18_toy-vps.py']
model = dict(track_head=None, link_previous=False)
