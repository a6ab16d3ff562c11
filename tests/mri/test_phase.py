"""Phase maps: wrapping, atan2 and magnitude-preserving synthesis of complex images and k-space."""

import math

import pytest
import torch

from phaselab.mri.fft import fft2c
from phaselab.mri.phase import phase_of, synthesize_image, synthesize_kspace, wrap_phase


def test_wrap_phase_range_and_identity_inside():
    phase = torch.tensor([-math.pi, -3.0, 0.1, math.pi, 4.0, -7.0, 2 * math.pi, 100.0])
    wrapped = wrap_phase(phase)
    assert (wrapped > -math.pi).all() and (wrapped <= math.pi).all()
    torch.testing.assert_close(
        torch.polar(torch.ones(8), wrapped), torch.polar(torch.ones(8), phase), atol=1e-5, rtol=0
    )
    assert torch.equal(wrapped[1:4], phase[1:4])  # values in range pass bit-for-bit
    assert wrapped[0] == torch.tensor(math.pi)  # -pi is outside (-pi, pi]


def test_synthesis_keeps_the_magnitude():
    magnitude = torch.rand(2, 12, 10, dtype=torch.float64) * 5
    phase = (torch.rand(2, 12, 10) * 2 - 1) * math.pi
    image = synthesize_image(magnitude, phase)
    assert image.dtype == torch.complex64
    torch.testing.assert_close(image.abs(), magnitude.float(), rtol=2e-7, atol=0)
    torch.testing.assert_close(torch.angle(image), phase, atol=1e-6, rtol=0)
    assert torch.equal(synthesize_kspace(magnitude, phase), fft2c(image))
    with pytest.raises(ValueError, match="differ in shape"):
        synthesize_image(magnitude, phase[:1])


def test_phase_of_is_half_open_interval():
    values = torch.tensor([complex(-1, 0.0), complex(-1, -0.0), 1j, -1j, 1 + 0j], dtype=torch.complex64)
    phase = phase_of(values)
    assert phase[0] == phase[1] == torch.tensor(math.pi, dtype=torch.float32)
    assert torch.allclose(phase[2:], torch.tensor([math.pi / 2, -math.pi / 2, 0.0]))
    assert phase.min() > -math.pi
