# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
import pytest
import torch
import torch.nn as nn
from mmseg.models.decode_heads.knet_head import KernelUpdator

from knet.models.layers import KNetKernelUpdator


def _copy(dst: nn.Module, src: nn.Module) -> None:
    dst.load_state_dict(src.state_dict(), strict=True)


def test_matches_mmseg_kernel_updator():
    """Same weights -> same outputs as mmseg's KernelUpdator (reference)."""
    ours = KNetKernelUpdator(in_channels=16, feat_channels=16,
                             out_channels=16)
    ref = KernelUpdator(in_channels=16, feat_channels=16, out_channels=16)
    for p in ref.parameters():
        nn.init.normal_(p, std=0.5)
    _copy(ours, ref)
    feats = torch.randn(2, 5, 16)
    kernels = torch.randn(2, 5, 1, 16)
    torch.testing.assert_close(ours(feats, kernels), ref(feats, kernels))


def test_gating_hand_computed():
    """With zeroed linear weights every LN sees a constant vector and
    returns its bias, so the output is closed-form."""
    upd = KNetKernelUpdator(in_channels=2, feat_channels=2, out_channels=2)
    for module in upd.modules():
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
    upd.norm_in.bias.data = torch.tensor([0., 1.])  # update gate logits
    upd.input_norm_in.bias.data = torch.tensor([2., -1.])  # input gate
    upd.norm_out.bias.data = torch.tensor([3., 4.])  # psi3(F)
    upd.input_norm_out.bias.data = torch.tensor([5., 6.])  # psi4(K)
    upd.fc_norm.bias.data = torch.tensor([-1., 0.5])
    out = upd(torch.randn(3, 2), torch.randn(3, 1, 2))
    # fc_layer has zero weights -> constant -> fc_norm returns its bias,
    # then ReLU.
    expected = torch.tensor([0., 0.5]).expand(3, 1, 2)
    torch.testing.assert_close(out, expected)
    # The mixture before fc_layer, checked through a hook on its input:
    seen = {}
    upd.fc_layer.register_forward_hook(
        lambda m, inp, out: seen.setdefault('x', inp[0]))
    upd(torch.randn(3, 2), torch.randn(3, 1, 2))
    sig = torch.sigmoid
    mix = sig(torch.tensor([0., 1.])) * torch.tensor([3., 4.]) + sig(
        torch.tensor([2., -1.])) * torch.tensor([5., 6.])
    torch.testing.assert_close(seen['x'], mix.expand(3, 1, 2))


def test_wide_kernels_are_updated_in_independent_halves():
    """512-d kernels through a 256-d updator (semantic K-Net) = the updator
    applied to each 256-d half on its own."""
    upd = KNetKernelUpdator(in_channels=8, feat_channels=8, out_channels=8)
    feats = torch.randn(2, 3, 16)
    kernels = torch.randn(2, 3, 1, 16)
    out = upd(feats, kernels).reshape(2, 3, 16)
    first = upd(feats[..., :8], kernels[..., :8]).reshape(2, 3, 8)
    second = upd(feats[..., 8:], kernels[..., 8:]).reshape(2, 3, 8)
    torch.testing.assert_close(out, torch.cat([first, second], -1))


def test_rejects_inconsistent_widths():
    with pytest.raises(ValueError, match='in_channels == feat_channels'):
        KNetKernelUpdator(in_channels=256, feat_channels=64)
