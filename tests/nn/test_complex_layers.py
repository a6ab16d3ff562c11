"""Complex-valued layers (phaselab.nn) against real-arithmetic oracles."""

import math

import pytest
import torch
import torch.nn.functional as F

from phaselab.nn.complex_layers import (
    ComplexBatchNorm2d,
    ComplexConv2d,
    ComplexDropout,
    ComplexLinear,
    SplitPReLU,
    SplitReLU,
    spectral_pool,
    spectral_resize,
    to_complex,
    to_split,
)
from tests.complex_helpers import one_torch_thread, random_complex  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_complex_conv_is_the_real_arithmetic_formula():
    torch.manual_seed(0)
    conv = ComplexConv2d(3, 5, kernel_size=3, bias=True)
    with torch.no_grad():
        conv.bias.copy_(random_complex(5, seed=3))
    z = random_complex(2, 3, 8, 8, seed=1)
    a, b = conv.weight.real.detach(), conv.weight.imag.detach()
    x, y = z.real, z.imag
    expected = (
        torch.complex(
            F.conv2d(x, a, padding=1) - F.conv2d(y, b, padding=1),
            F.conv2d(x, b, padding=1) + F.conv2d(y, a, padding=1),
        )
        + conv.bias.detach()[:, None, None]
    )
    got = to_complex(conv(to_split(z)))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # and torch's own complex convolution agrees
    torch.testing.assert_close(got, F.conv2d(z, conv.weight, conv.bias, padding=1), rtol=1e-4, atol=1e-4)


def test_complex_linear_and_split_prelu():
    torch.manual_seed(0)
    lin = ComplexLinear(4, 3)
    v = random_complex(2, 4)
    torch.testing.assert_close(lin(v), v @ lin.weight.detach().T + lin.bias.detach())
    act = SplitPReLU(2, init=0.1)
    z = torch.complex(torch.tensor([-1.0, 2.0]), torch.tensor([3.0, -4.0])).reshape(1, 2, 1, 1)
    out = to_complex(act(to_split(z))).flatten()
    torch.testing.assert_close(out, torch.complex(torch.tensor([-0.1, 2.0]), torch.tensor([3.0, -0.4])))


def test_complex_batch_norm_whitens_a_skewed_correlated_input():
    g = torch.Generator().manual_seed(0)
    u = torch.empty(64, 2, 8, 8).exponential_(generator=g)  # skewed
    v = torch.randn(64, 2, 8, 8, generator=g)
    # per channel: mean ~(6 - 6i) / (-1 + 4i) offsets, re and im strongly correlated, scales 1 and 10
    scale = torch.tensor([1.0, 10.0])[None, :, None, None]
    re = scale * (3.0 * u) + torch.tensor([3.0, -1.0])[None, :, None, None]
    im = scale * (2.0 * u + 0.3 * v) + torch.tensor([-2.0, 4.0])[None, :, None, None]
    bn = ComplexBatchNorm2d(2)
    out = to_complex(bn(to_split(torch.complex(re, im))))
    for c in range(2):
        o = out[:, c].flatten()
        assert o.mean().abs() < 1e-4
        cov = torch.cov(torch.stack([o.real, o.imag]), correction=0)
        torch.testing.assert_close(cov, torch.eye(2), atol=2e-3, rtol=0)  # Var re = Var im = 1, uncorrelated
    # the public code's x - mean/sqrt(var) does not whiten: the check above would fail for it
    naive = torch.complex(re, im) - torch.complex(re, im).mean() / torch.complex(re, im).var().sqrt()
    assert torch.cov(torch.stack([naive[:, 0].flatten().real, naive[:, 0].flatten().imag]))[0, 1].abs() > 1
    # running statistics converge to the data's, so eval mode whitens the same distribution too
    for _ in range(60):
        bn(to_split(torch.complex(re, im)))
    bn.eval()
    o = to_complex(bn(to_split(torch.complex(re, im))))[:, 1].flatten()
    cov = torch.cov(torch.stack([o.real, o.imag]), correction=0)
    torch.testing.assert_close(cov, torch.eye(2), atol=2e-2, rtol=0)


def test_complex_dropout_drops_real_and_imaginary_together():
    drop = ComplexDropout(0.5).train()
    drop.generator = torch.Generator().manual_seed(0)
    z = torch.complex(torch.ones(2, 3, 8, 8), torch.ones(2, 3, 8, 8))
    out = to_complex(drop(to_split(z)))
    assert torch.equal(out.real == 0, out.imag == 0)
    assert set(out.real.unique().tolist()) == {0.0, 2.0}
    assert 0.3 < (out.real == 0).float().mean() < 0.7
    assert torch.equal(drop.eval()(to_split(z)), to_split(z))


def test_spectral_pooling_of_a_band_limited_image_is_exact():
    n = 32
    y, x = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    image = torch.zeros(n, n, dtype=torch.complex64)
    g = torch.Generator().manual_seed(0)
    for ky in range(-7, 8):  # all |k| < n/4: representable on the pooled 16 x 16 grid
        for kx in (-7, -3, 0, 5, 7):
            c = torch.complex(torch.randn((), generator=g), torch.randn((), generator=g))
            image = image + c * torch.exp(2j * math.pi * (ky * y + kx * x) / n)
    split = to_split(image[None, None])
    pooled = to_complex(spectral_pool(split))[0, 0]
    torch.testing.assert_close(pooled, image[::2, ::2], atol=2e-4, rtol=0)
    # zero-padding the spectrum back interpolates it exactly
    torch.testing.assert_close(
        to_complex(spectral_resize(spectral_pool(split), (n, n)))[0, 0], image, atol=2e-4, rtol=0
    )


def test_split_relu_acts_on_real_and_imaginary_parts_separately():
    z = torch.complex(torch.tensor([-1.0, 2.0]), torch.tensor([3.0, -4.0])).reshape(1, 2, 1, 1)
    out = to_complex(SplitReLU()(to_split(z))).flatten()
    torch.testing.assert_close(out, torch.complex(torch.tensor([0.0, 2.0]), torch.tensor([3.0, 0.0])))
