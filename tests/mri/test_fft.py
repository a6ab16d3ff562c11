"""Centered orthonormal FFTs against a numpy oracle."""

import numpy as np
import pytest
import torch

from phaselab.mri.fft import fft2c, ifft2c

SHAPES = [(8, 8), (7, 9), (2, 6, 5), (3, 2, 16, 11)]


def _random_complex(shape, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    data = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    return torch.from_numpy(data.astype(np.complex64))


def _numpy_fft2c(x: np.ndarray) -> np.ndarray:
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=axes), norm="ortho"), axes=axes)


def _numpy_ifft2c(x: np.ndarray) -> np.ndarray:
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(x, axes=axes), norm="ortho"), axes=axes)


@pytest.mark.parametrize("shape", SHAPES)
def test_fft2c_matches_numpy(shape):
    x = _random_complex(shape, seed=1)
    expected = _numpy_fft2c(x.numpy().astype(np.complex128))
    np.testing.assert_allclose(fft2c(x).numpy(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_ifft2c_matches_numpy(shape):
    x = _random_complex(shape, seed=2)
    expected = _numpy_ifft2c(x.numpy().astype(np.complex128))
    np.testing.assert_allclose(ifft2c(x).numpy(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_round_trip(shape):
    x = _random_complex(shape, seed=3)
    torch.testing.assert_close(ifft2c(fft2c(x)), x, rtol=0, atol=1e-5)
    torch.testing.assert_close(fft2c(ifft2c(x)), x, rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_parseval(shape):
    x = _random_complex(shape, seed=4).to(torch.complex128)
    energy = x.abs().square().sum(dim=(-2, -1))
    torch.testing.assert_close(fft2c(x).abs().square().sum(dim=(-2, -1)), energy)
    torch.testing.assert_close(ifft2c(x).abs().square().sum(dim=(-2, -1)), energy)


@pytest.mark.parametrize("shape", [(8, 8), (7, 9), (6, 5), (9, 7)])
def test_constant_image_puts_all_energy_at_centre(shape):
    h, w = shape
    kspace = fft2c(torch.ones(shape, dtype=torch.complex64))
    expected = torch.zeros(shape, dtype=torch.complex64)
    expected[h // 2, w // 2] = np.sqrt(h * w)
    torch.testing.assert_close(kspace, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", [(8, 8), (7, 9), (6, 5)])
def test_centre_delta_image_is_flat_kspace(shape):
    # a point at the image centre has zero phase ramp, so its k-space is real and constant
    h, w = shape
    image = torch.zeros(shape, dtype=torch.complex64)
    image[h // 2, w // 2] = 1
    expected = torch.full(shape, 1 / np.sqrt(h * w), dtype=torch.complex64)
    torch.testing.assert_close(fft2c(image), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(ifft2c(image), expected, rtol=0, atol=1e-6)


def test_transforms_only_last_two_dims():
    x = _random_complex((3, 4, 6, 5), seed=5)
    batched = fft2c(x)
    for i in range(3):
        for j in range(4):
            torch.testing.assert_close(batched[i, j], fft2c(x[i, j]))
