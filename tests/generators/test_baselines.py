"""Baseline phase sources: range, magnitude preservation, seeding, and each source's defining property."""

import math

import pytest
import torch

from phaselab.generators import create_phase_source
from phaselab.mri.phase import synthesize_image

PI32 = torch.tensor(math.pi, dtype=torch.float32)
RANDOM_SOURCES = ["iid_gaussian", "smooth", "sinusoid"]


def _magnitudes(batch: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    disc = ((x**2 + y**2) < 0.7).float()
    return disc * (0.5 + torch.rand(batch, size, size, generator=g))


def _mean_abs_wrapped_gradient(phase: torch.Tensor) -> float:
    dx = torch.angle(torch.polar(torch.ones_like(phase[..., 1:]), phase[..., 1:] - phase[..., :-1]))
    dy = torch.angle(torch.polar(torch.ones_like(phase[..., 1:, :]), phase[..., 1:, :] - phase[..., :-1, :]))
    return float((dx.abs().mean() + dy.abs().mean()) / 2)


@pytest.mark.parametrize("name", ["gt", "zero", *RANDOM_SOURCES])
def test_phase_range_dtype_and_exact_magnitude(name):
    magnitude = _magnitudes()
    true_phase = (torch.rand(magnitude.shape) * 2 - 1) * math.pi
    phase = create_phase_source(name).sample(magnitude, seed=0, true_phase=true_phase)
    assert phase.shape == magnitude.shape and phase.dtype == torch.float32
    assert (phase > -PI32).all() and (phase <= PI32).all()
    image = synthesize_image(magnitude, phase)
    torch.testing.assert_close(image.abs(), magnitude, rtol=2e-7, atol=0)


@pytest.mark.parametrize("name", RANDOM_SOURCES)
def test_seeding_is_per_slice_and_independent_of_the_batch(name):
    source = create_phase_source(name)
    magnitude = _magnitudes(batch=4)
    full = source.sample(magnitude, seed=11)
    assert torch.equal(full, source.sample(magnitude, seed=11))
    assert torch.equal(full[:2], source.sample(magnitude[:2], seed=11))
    assert not torch.equal(full, source.sample(magnitude, seed=12))
    assert not torch.equal(full[0], full[1])
    # per-slice seeds reproduce a slice wherever it sits in the batch
    alone = source.sample(magnitude[2:3], seed=7)
    shuffled = source.sample(magnitude[[3, 2]], seed=[1, 7])
    assert torch.equal(shuffled[1], alone[0])


def test_gt_returns_the_true_phase_and_needs_it():
    magnitude = _magnitudes()
    true_phase = (torch.rand(magnitude.shape) * 2 - 1) * math.pi
    source = create_phase_source("gt")
    assert torch.equal(source.sample(magnitude, seed=0, true_phase=true_phase), true_phase)
    wrapped = source.sample(magnitude, seed=0, true_phase=true_phase + 2 * math.pi)
    torch.testing.assert_close(wrapped, true_phase, atol=2e-6, rtol=0)
    with pytest.raises(ValueError, match="needs true_phase"):
        source.sample(magnitude, seed=0)
    with pytest.raises(ValueError, match="does not match"):
        source.sample(magnitude, seed=0, true_phase=true_phase[:1])


def test_zero_is_zero():
    assert torch.equal(create_phase_source("zero").sample(_magnitudes(), seed=3), torch.zeros(3, 32, 32))


def test_iid_gaussian_statistics():
    phase = create_phase_source("iid_gaussian").sample(_magnitudes(batch=4, size=64), seed=0)
    assert abs(float(phase.mean())) < 0.03
    assert abs(float(phase.std()) - 1.0) < 0.03  # wrapping touches only the |x| > pi tail (0.2%)
    neighbours = torch.corrcoef(torch.stack([phase[..., :-1].flatten(), phase[..., 1:].flatten()]))[0, 1]
    assert abs(float(neighbours)) < 0.03
    half = create_phase_source("iid_gaussian", sigma=0.5).sample(_magnitudes(batch=4, size=64), seed=0)
    assert abs(float(half.std()) - 0.5) < 0.02


def test_smooth_is_smooth_and_has_the_configured_amplitude():
    magnitude = _magnitudes(batch=4, size=64)
    smooth = create_phase_source("smooth").sample(magnitude, seed=0)
    iid = create_phase_source("iid_gaussian").sample(magnitude, seed=0)
    assert _mean_abs_wrapped_gradient(smooth) < 0.05 * _mean_abs_wrapped_gradient(iid)
    field = create_phase_source("smooth", ramp=0.0, global_offset=False, amplitude=0.6).sample(
        magnitude, seed=1
    )
    torch.testing.assert_close(field.std(dim=(-2, -1)), torch.full((4,), 0.6), atol=1e-4, rtol=0)
    torch.testing.assert_close(field.mean(dim=(-2, -1)), torch.zeros(4), atol=1e-5, rtol=0)
    shorter = create_phase_source("smooth", correlation=0.05, ramp=0.0, global_offset=False).sample(
        magnitude, seed=1
    )
    assert _mean_abs_wrapped_gradient(shorter) > 3 * _mean_abs_wrapped_gradient(field)


def test_smooth_ramp_and_offset():
    magnitude = _magnitudes(batch=8, size=32)
    ramp_only = create_phase_source("smooth", amplitude=0.0, ramp=1.0, global_offset=False).sample(
        magnitude, seed=2
    )
    # a plane: constant differences along both axes, total change across the image within [-1, 1]
    dx = ramp_only[..., 1:] - ramp_only[..., :-1]
    assert float((dx - dx[..., :1, :1]).abs().max()) < 1e-5
    assert float(dx[..., 0, 0].abs().max()) * 32 <= 1.0 + 1e-4
    offsets = create_phase_source("smooth", amplitude=0.0, ramp=0.0).sample(
        _magnitudes(batch=64, size=8), seed=2
    )
    values = offsets[:, 0, 0]
    assert torch.equal(offsets, values[:, None, None].expand_as(offsets))
    assert float(values.min()) < -2 and float(values.max()) > 2  # spread over (-pi, pi)


def test_sinusoid_formula():
    magnitude = _magnitudes(batch=2, size=32)
    h, w = magnitude.shape[-2:]
    y = torch.arange(h, dtype=torch.float32)[:, None]
    x = torch.arange(w, dtype=torch.float32)[None, :]
    low = magnitude.amin(dim=(-2, -1), keepdim=True)
    m_hat = (magnitude - low) / (magnitude.amax(dim=(-2, -1), keepdim=True) - low)
    expected = (torch.sin(2 * math.pi * x / w) + torch.cos(2 * math.pi * y / h)) * m_hat
    noiseless = create_phase_source("sinusoid", noise=0.0).sample(magnitude, seed=0)
    torch.testing.assert_close(noiseless, expected, atol=1e-6, rtol=0)  # |expected| <= 2 < pi: no wrap
    noisy = create_phase_source("sinusoid").sample(magnitude, seed=0)
    residual = noisy - expected
    assert abs(float(residual.std()) - 0.05) < 0.005 and abs(float(residual.mean())) < 0.005
    constant = create_phase_source("sinusoid", noise=0.0).sample(torch.ones(1, 8, 8), seed=0)
    assert torch.equal(constant, torch.zeros(1, 8, 8))


def test_bad_configs_and_inputs():
    with pytest.raises(ValueError):
        create_phase_source("smooth", correlation=0.0)
    with pytest.raises(ValueError):
        create_phase_source("iid_gaussian", sigma=-1.0)
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        create_phase_source("zero").sample(torch.ones(8, 8), seed=0)
