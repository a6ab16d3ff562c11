"""Our U-Net and NormUnet against fastMRI's reference implementation (weights copied across)."""

import pytest
import torch
from fastmri.models.unet import Unet as FastmriUnet
from fastmri.models.varnet import NormUnet as FastmriNormUnet

from phaselab.recon.unet import NormUnet, Unet


def copy_fastmri_unet(ours: Unet, ref: FastmriUnet) -> None:
    """Load a fastMRI U-Net's weights into ours (same layers, different module names)."""
    pools = len(ref.down_sample_layers)
    state = {}
    for i in range(pools):
        for j in (0, 4):  # the two convolutions of a ConvBlock
            state[f"down.{i}.{j}.weight"] = ref.down_sample_layers[i].layers[j].weight
            up_block = ref.up_conv[i] if i < pools - 1 else ref.up_conv[i][0]
            state[f"up.{i}.{j}.weight"] = up_block.layers[j].weight
            state[f"bottleneck.{j}.weight"] = ref.conv.layers[j].weight
        state[f"up_transpose.{i}.0.weight"] = ref.up_transpose_conv[i].layers[0].weight
    state["head.weight"], state["head.bias"] = ref.up_conv[-1][1].weight, ref.up_conv[-1][1].bias
    ours.load_state_dict(state)  # strict: every parameter mapped exactly once


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (1, 3, 37, 45)])
def test_unet_matches_fastmri(shape):
    torch.manual_seed(0)
    ref, ours = FastmriUnet(3, 2, chans=4, num_pool_layers=3), Unet(3, 2, chans=4, num_pool_layers=3)
    copy_fastmri_unet(ours, ref)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    x = torch.randn(shape)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


def test_unet_parameter_count_of_the_varnet_regularizer():
    assert sum(p.numel() for p in Unet(2, 2, chans=18, num_pool_layers=4).parameters()) == 2_454_338


@pytest.mark.parametrize("size", [(32, 32), (30, 45)])
def test_norm_unet_matches_fastmri(size):
    torch.manual_seed(1)
    ref, ours = FastmriNormUnet(chans=4, num_pools=4), NormUnet(chans=4, num_pools=4)  # both pad to x16
    copy_fastmri_unet(ours.unet, ref.unet)
    image = torch.randn(2, *size, dtype=torch.complex64) * 3e-4 + 1e-4  # fastMRI-like small values
    expected = torch.view_as_complex(ref(torch.view_as_real(image).unsqueeze(1)).squeeze(1).contiguous())
    out = ours(image)
    assert out.dtype == torch.complex64 and out.shape == image.shape
    torch.testing.assert_close(out, expected, atol=1e-8, rtol=1e-4)


def test_norm_unet_is_scale_equivariant_and_safe_on_zeros():
    torch.manual_seed(2)
    net = NormUnet(chans=4, num_pools=2)
    image = torch.randn(1, 16, 16, dtype=torch.complex64)
    # per-sample normalization: scaling the input scales the output
    torch.testing.assert_close(net(image * 1e3), net(image) * 1e3, rtol=1e-4, atol=1e-3)
    assert torch.isfinite(torch.view_as_real(net(torch.zeros(1, 16, 16, dtype=torch.complex64)))).all()
    with pytest.raises(ValueError, match="complex"):
        net(torch.zeros(1, 16, 16))
