# UPerNet K-Net on mmseg's Swin-T (ImageNet-1k 224 weights converted to
# mmseg's key names); Swin optimizer: lr 6e-5, no decay on position tables
# and on every parameter whose name contains "norm" (K-Net LNs included).
_base_ = './knet_s3_upernet_r50-d8_80k_adamw_ade20k.py'
model = dict(
    pretrained='https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_tiny_patch4_window7_224_20220308-f41b89d3.pth',  # noqa
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.3,
        use_abs_pos_embed=False,
        patch_norm=True,
        out_indices=(0, 1, 2, 3),
        with_cp=False),
    decode_head=dict(kernel_generate_head=dict(in_channels=[96, 192, 384,
                                                            768])),
    auxiliary_head=dict(in_channels=384))
optim_wrapper = dict(
    optimizer=dict(lr=0.00006, betas=(0.9, 0.999), weight_decay=0.0005),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))
