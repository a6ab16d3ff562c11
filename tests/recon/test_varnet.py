"""Single-coil VarNet: parameter count, data consistency, and equality with fastMRI's cascade at one coil."""

import fastmri
import torch
from fastmri.models.varnet import NormUnet as FastmriNormUnet
from fastmri.models.varnet import VarNetBlock

from phaselab.mri.fft import fft2c, ifft2c
from phaselab.recon.varnet import VarNet, VarNetCascade
from tests.recon.test_unet import copy_fastmri_unet


class _Zero(torch.nn.Module):
    def forward(self, image):
        return torch.zeros_like(image)


def _masked_kspace(batch=2, h=24, w=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    kspace = torch.randn(batch, h, w, dtype=torch.complex64, generator=g)
    mask = torch.zeros(w, dtype=torch.bool)
    mask[::3] = True
    mask[8:12] = True
    return kspace * mask, mask


def test_default_parameter_count():
    # 12 normalized U-Nets (chans 18, 4 pools, 2 -> 2 channels) + one eta per cascade
    assert sum(p.numel() for p in VarNet().parameters()) == 12 * 2_454_338 + 12 == 29_452_068


def test_cascade_soft_data_consistency():
    masked, mask = _masked_kspace()
    current = torch.randn_like(masked)
    cascade = VarNetCascade(_Zero())
    out = cascade(current, masked, mask[None])
    # eta = 1: sampled columns reset to k0 (up to the rounding of k - (k - k0))
    torch.testing.assert_close(out[..., mask], masked[..., mask], atol=1e-6, rtol=0)
    assert torch.equal(out[..., ~mask], current[..., ~mask])  # the rest untouched without a regularizer
    with torch.no_grad():
        cascade.dc_weight.fill_(0.25)
    out = cascade(current, masked, mask[None])
    expected = current[..., mask] - 0.25 * (current[..., mask] - masked[..., mask])
    torch.testing.assert_close(out[..., mask], expected)


def test_varnet_keeps_k0_with_regularizers_and_eta_zeroed():
    masked, mask = _masked_kspace()
    model = VarNet(cascades=3, chans=4, pools=2)
    for cascade in model.cascades:
        cascade.regularizer = _Zero()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    out = model(masked, mask)
    assert torch.equal(out[..., mask], masked[..., mask])
    assert torch.equal(out, masked)


def test_regularizer_changes_unsampled_columns_only_through_the_network():
    masked, mask = _masked_kspace()
    torch.manual_seed(0)
    model = VarNet(cascades=2, chans=4, pools=2)
    out = model(masked, mask)
    assert out.shape == masked.shape and out.dtype == torch.complex64
    assert (out[..., ~mask].abs() > 0).any()  # the network fills in missing columns
    # one mask for all samples == the same mask given per sample
    torch.testing.assert_close(model(masked, mask.expand(2, -1)), out)
    torch.testing.assert_close(VarNet.image(out), ifft2c(out).abs())


def test_matches_fastmri_varnet_blocks_with_unit_sensitivity():
    masked, mask = _masked_kspace(h=32, w=32)
    torch.manual_seed(3)
    ours = VarNet(cascades=2, chans=4, pools=2)
    refs = []
    for cascade in ours.cascades:
        ref_unet = FastmriNormUnet(chans=4, num_pools=2)
        copy_fastmri_unet(cascade.regularizer.unet, ref_unet.unet)
        block = VarNetBlock(ref_unet)
        with torch.no_grad():
            cascade.dc_weight.fill_(0.7)
            block.dc_weight.fill_(0.7)
        refs.append(block)
    ref_k0 = torch.view_as_real(masked).unsqueeze(1)  # (B, coils=1, H, W, 2)
    ref_mask = mask.view(1, 1, 1, -1, 1)
    sens = torch.zeros_like(ref_k0)
    sens[..., 0] = 1
    kspace = ref_k0
    for block in refs:
        kspace = block(kspace, ref_k0, ref_mask, sens)
    expected = torch.view_as_complex(kspace.squeeze(1).contiguous())
    torch.testing.assert_close(ours(masked, mask), expected, atol=1e-5, rtol=1e-4)
    # and the FFT conventions agree
    torch.testing.assert_close(torch.view_as_real(fft2c(masked)), fastmri.fft2c(torch.view_as_real(masked)))
