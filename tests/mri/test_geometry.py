import math

import numpy as np
import pytest
import torch
from fastmri.data.transforms import center_crop as fastmri_center_crop

from phaselab.mri.fft import fft2c, ifft2c
from phaselab.mri.geometry import center_crop, fourier_resize, kspace_to_working_image
from phaselab.mri.phase import phase_of


def _complex(shape, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(shape, generator=g), torch.randn(shape, generator=g))


def _band_limited(n: int, band: int, seed: int = 0) -> torch.Tensor:
    """Centred k-space (n, n) with non-zero coefficients only for |frequency| < band <= n // 2."""
    kspace = torch.zeros(n, n, dtype=torch.complex128)
    centre = slice(n // 2 - band + 1, n // 2 + band)
    kspace[centre, centre] = _complex((2 * band - 1, 2 * band - 1), seed).to(torch.complex128)
    return kspace


def _evaluate(kspace: torch.Tensor, m: int) -> torch.Tensor:
    """Trigonometric polynomial of centred ``kspace`` (n, n), sampled on an m x m grid of the same FOV,
    scaled like fourier_resize (pixel values kept): pixel j sits at (j - m // 2) / m."""
    n = kspace.shape[-1]
    freq = torch.arange(n, dtype=torch.float64) - n // 2
    pos = (torch.arange(m, dtype=torch.float64) - m // 2) / m
    basis = torch.exp(2j * math.pi * pos[:, None] * freq[None, :])  # (m, n)
    return basis @ kspace @ basis.T / n


def test_center_crop_matches_fastmri_and_checks_size():
    x = _complex((2, 9, 12))
    cropped = center_crop(x, (5, 6))
    assert torch.equal(cropped, x[..., 2:7, 3:9])
    assert torch.equal(cropped, fastmri_center_crop(x, (5, 6)))
    assert np.array_equal(center_crop(x.numpy(), (5, 6)), cropped.numpy())
    with pytest.raises(ValueError, match="cannot crop"):
        center_crop(x, (10, 6))


@pytest.mark.parametrize(("n", "m"), [(32, 64), (32, 45), (31, 50)])
def test_band_limited_image_is_exact_at_larger_size(n, m):
    kspace = _band_limited(n, band=n // 2 - 2)
    image = ifft2c(kspace)
    assert torch.allclose(image, _evaluate(kspace, n), atol=1e-12)  # the oracle agrees with ifft2c
    resized = fourier_resize(image, m)
    assert resized.shape == (m, m)
    assert torch.allclose(resized, _evaluate(kspace, m), atol=1e-12)


@pytest.mark.parametrize(("n", "m"), [(40, 64), (41, 64), (40, 57), (320, 256)])
def test_up_then_down_is_identity_and_constant_keeps_value(n, m):
    image = _complex((2, n, n), seed=3).to(torch.complex128)
    small, large = min(n, m), max(n, m)
    start = _complex((2, small, small), seed=4).to(torch.complex128)
    assert torch.allclose(fourier_resize(fourier_resize(start, large), small), start, atol=1e-12)
    constant = torch.full((n, n), 0.7 - 0.2j, dtype=torch.complex128)
    assert torch.allclose(fourier_resize(constant, m), torch.full((m, m), 0.7 - 0.2j, dtype=torch.complex128))
    assert fourier_resize(image, (m, m + 3)).shape == (2, m, m + 3)


def _smooth_object(n: int) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    r = torch.sqrt(x**2 + 0.6 * y**2)
    return (torch.sigmoid((0.7 - r) * 20) * (1 + 0.3 * x)).double()


@pytest.mark.parametrize(("n", "m"), [(320, 256), (64, 96), (63, 256)])
def test_constant_phase_image_keeps_its_phase(n, m):
    # Even sizes: the Nyquist handling keeps a real image real, so no spurious phase appears.
    phi = 2.9
    image = _smooth_object(n) * complex(math.cos(phi), math.sin(phi))
    resized = fourier_resize(image, m)
    inside = resized.abs() > 0.1 * resized.abs().max()
    assert inside.float().mean() > 0.2
    assert torch.allclose(phase_of(resized)[inside], torch.full_like(resized.real[inside], phi), atol=1e-9)


def test_wrapping_phase_ramp_does_not_smear():
    # exp(i * ramp) with an integer frequency is band-limited; its phase wraps 6 times across the image.
    n, m = 64, 128
    ramp = lambda size: 2 * math.pi * 6 * (torch.arange(size, dtype=torch.float64) - size // 2) / size  # noqa: E731
    image = torch.exp(1j * ramp(n))[None, :].repeat(n, 1)
    resized = fourier_resize(image, m)
    expected = torch.exp(1j * ramp(m))[None, :].repeat(m, 1)
    wrapped_error = torch.angle(resized * expected.conj())
    assert wrapped_error.abs().max() < 1e-9
    # what the seed code did - interpolating the wrapped angle - smears every wrap by up to ~pi
    angle = phase_of(image).float()[None, None]
    interpolated = torch.nn.functional.interpolate(angle, size=(m, m), mode="bilinear")[0, 0].double()
    assert torch.angle(torch.exp(1j * interpolated) * expected.conj()).abs().max() > 1.0


def test_fourier_resize_needs_a_complex_image():
    with pytest.raises(TypeError, match="complex"):
        fourier_resize(torch.ones(8, 8), 4)


def test_kspace_to_working_image_crops_only_where_larger():
    image = _complex((2, 3, 80, 30), seed=5)
    kspace = fft2c(image)
    working = kspace_to_working_image(kspace, crop=(40, 40), size=32)
    assert working.shape == (2, 3, 32, 32)
    expected = fourier_resize(center_crop(image, (40, 30)), 32)
    assert torch.allclose(working, expected, atol=1e-5)
    assert torch.allclose(kspace_to_working_image(kspace, crop=None, size=None), image, atol=1e-5)
