"""Metrics: agreement with fastmri.evaluate, known values, and the weight-free phase statistics."""

import fastmri.evaluate as fm_eval
import numpy as np
import pytest
import torch
from fastmri.losses import SSIMLoss
from skimage.metrics import structural_similarity

from phaselab.mri.metrics import (
    mse,
    mse_per_slice,
    nmse,
    nrmse,
    phase_error,
    phase_gradient_stats,
    psnr,
    ssim,
    ssim_per_slice,
    ssim_torch,
)

SHAPES = [(3, 32, 40), (2, 37, 29), (1, 64, 64), (4, 7, 9)]


def _random_pair(shape, seed: int, dtype=np.float64):
    rng = np.random.default_rng(seed)
    gt = rng.random(shape)
    pred = gt + 0.1 * rng.standard_normal(shape)
    return gt.astype(dtype), pred.astype(dtype)


def _structured_pair(shape, seed: int, dtype=np.float64):
    """Disc with a bright inclusion on a zero background, and a blurred, biased estimate of it."""
    rng = np.random.default_rng(seed)
    s, h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    gt = np.zeros(shape)
    for i in range(s):
        cy, cx = h / 2 + rng.uniform(-2, 2), w / 2 + rng.uniform(-2, 2)
        r2 = ((y - cy) / (0.4 * h)) ** 2 + ((x - cx) / (0.4 * w)) ** 2
        gt[i] = (r2 < 1) * (0.5 + 0.3 * x / w) + 0.8 * (r2 < 0.1)
    pred = 0.25 * (gt + np.roll(gt, 1, -1) + np.roll(gt, 1, -2) + np.roll(gt, (1, 1), (-2, -1)))
    pred = 0.97 * pred + 0.01 * rng.standard_normal(shape)
    return (1e-4 * gt).astype(dtype), (1e-4 * pred).astype(dtype)  # fastMRI-like magnitudes


@pytest.mark.parametrize("make", [_random_pair, _structured_pair])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("maxval_scale", [None, 1.7])
def test_metrics_match_fastmri(make, shape, maxval_scale):
    gt, pred = make(shape, seed=sum(shape))
    maxval = None if maxval_scale is None else maxval_scale * float(gt.max())
    assert ssim(gt, pred, maxval) == pytest.approx(float(fm_eval.ssim(gt, pred, maxval)[0]), abs=1e-5)
    assert psnr(gt, pred, maxval) == pytest.approx(float(fm_eval.psnr(gt, pred, maxval)), abs=1e-5)
    assert nmse(gt, pred) == pytest.approx(float(fm_eval.nmse(gt, pred)), rel=1e-6)


def test_metrics_match_fastmri_on_float32_fastmri_sized_volume():
    gt, pred = _structured_pair((2, 320, 320), seed=3, dtype=np.float32)
    assert ssim(gt, pred) == pytest.approx(float(fm_eval.ssim(gt, pred)[0]), abs=1e-5)
    assert psnr(gt, pred) == pytest.approx(float(fm_eval.psnr(gt, pred)), abs=1e-4)
    assert nmse(gt, pred) == pytest.approx(float(fm_eval.nmse(gt, pred)), rel=1e-5)


def test_ssim_per_slice_uses_volume_maximum():
    gt, pred = _random_pair((3, 32, 32), seed=0)
    gt[1] *= 0.1  # a dark slice: its SSIM must still use the volume's data range
    pred[1] *= 0.1
    expected = [structural_similarity(gt[i], pred[i], data_range=gt.max()) for i in range(3)]
    np.testing.assert_allclose(ssim_per_slice(gt, pred), expected, atol=1e-10)
    assert ssim(gt, pred) == pytest.approx(np.mean(expected), abs=1e-10)


def test_identical_volumes():
    gt, _ = _structured_pair((2, 24, 24), seed=1)
    assert ssim(gt, gt) == pytest.approx(1.0, abs=1e-12)
    assert psnr(gt, gt) == float("inf")
    assert nmse(gt, gt) == 0.0
    assert nrmse(gt, gt) == 0.0


def test_nrmse_and_psnr_known_values():
    gt = np.ones((1, 8, 8))
    pred = gt + 0.5  # every pixel off by 0.5: ||e|| / ||gt|| = 0.5, mse = 0.25
    assert nrmse(gt, pred) == pytest.approx(0.5)
    assert nmse(gt, pred) == pytest.approx(0.25)
    assert psnr(gt, pred) == pytest.approx(10 * np.log10(1 / 0.25))
    assert psnr(gt, pred, maxval=2.0) == pytest.approx(10 * np.log10(4 / 0.25))


def test_mse_is_phasegens_per_slice_min_max_scaled_squared_error():
    rng = np.random.default_rng(5)
    gt = rng.random((3, 12, 10)) * np.array([1.0, 5.0, 300.0])[:, None, None] + 2.0
    pred = gt + rng.standard_normal(gt.shape)
    # the study's validation: target scaled to [0, 1] per slice, the prediction in the same units
    expected = []
    for g, p in zip(gt, pred, strict=True):
        lo, hi = g.min(), g.max()
        expected.append(np.mean(((g - lo) / (hi - lo) - (p - lo) / (hi - lo)) ** 2))
    np.testing.assert_allclose(mse_per_slice(gt, pred), expected, rtol=1e-12)
    assert mse(gt, pred) == pytest.approx(np.mean(expected), rel=1e-12)
    assert mse(torch.from_numpy(gt[0]), torch.from_numpy(pred[0])) == pytest.approx(expected[0], rel=1e-12)
    assert mse(gt, gt) == 0.0
    # a constant target slice has no range: left out of the mean (NaN on its own)
    flat = np.concatenate([gt[:1], np.full((1, 12, 10), 3.0)])
    assert np.isnan(mse_per_slice(flat, flat + 1)[1]) and mse(flat, flat + 1) == pytest.approx(
        float(mse_per_slice(flat, flat + 1)[0])
    )
    assert np.isnan(mse(np.zeros((1, 8, 8)), np.ones((1, 8, 8))))


def test_single_image_and_torch_inputs_are_one_slice():
    gt, pred = _random_pair((1, 16, 16), seed=2)
    assert ssim(gt[0], pred[0]) == pytest.approx(ssim(gt, pred))
    assert psnr(torch.from_numpy(gt), torch.from_numpy(pred)) == pytest.approx(psnr(gt, pred))


def test_metric_argument_errors():
    gt = np.ones((2, 16, 16))
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(gt, np.ones((2, 16, 15)))
    with pytest.raises(ValueError, match="real"):
        psnr(gt.astype(np.complex64), gt.astype(np.complex64))
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim(np.ones((1, 6, 16)), np.ones((1, 6, 16)))
    with pytest.raises(ValueError, match=r"\(S, H, W\)"):
        nmse(np.ones((1, 2, 8, 8)), np.ones((1, 2, 8, 8)))


def test_ssim_torch_matches_numpy_and_fastmri_loss():
    gt, pred = _structured_pair((3, 40, 36), seed=4)
    gt_t, pred_t = torch.from_numpy(gt), torch.from_numpy(pred).requires_grad_(True)
    data_range = torch.tensor([gt.max(), 2 * gt.max(), 0.5 * gt.max()])
    per_sample = ssim_torch(gt_t, pred_t, data_range)
    expected = [ssim_per_slice(gt[i], pred[i], maxval=float(data_range[i])).item() for i in range(3)]
    np.testing.assert_allclose(per_sample.detach().numpy(), expected, atol=1e-10)
    fm_loss = SSIMLoss()(pred_t.unsqueeze(1).float(), gt_t.unsqueeze(1).float(), data_range.float())
    assert 1 - per_sample.mean().item() == pytest.approx(fm_loss.item(), abs=1e-5)
    per_sample.sum().backward()
    assert pred_t.grad is not None and torch.isfinite(pred_t.grad).all() and pred_t.grad.abs().sum() > 0
    same = ssim_torch(gt_t.unsqueeze(1), gt_t.unsqueeze(1), float(gt.max()))
    torch.testing.assert_close(same, torch.ones(3, dtype=same.dtype))


# ---- phase -------------------------------------------------------------------------------------


def _phase_case(shape=(48, 40), seed=0):
    rng = np.random.default_rng(seed)
    h, w = shape[-2:]
    y, x = np.mgrid[0:h, 0:w]
    magnitude = (((y - h / 2) / (0.4 * h)) ** 2 + ((x - w / 2) / (0.4 * w)) ** 2 < 1).astype(float)
    magnitude = np.broadcast_to(magnitude, shape) + 0.01 * rng.random(shape)
    true = np.angle(np.exp(1j * (0.2 * x + 0.1 * y + rng.normal(0, 0.3, shape))))
    return true, magnitude


def test_phase_error_zero_for_identical_phase():
    true, magnitude = _phase_case()
    assert phase_error(true, true, magnitude) == pytest.approx(0.0, abs=1e-12)
    assert phase_error(true, true, magnitude, remove_global=False) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("offset", [0.5, 2.0, -3.0])
def test_phase_error_global_offset(offset):
    true, magnitude = _phase_case()
    pred = np.angle(np.exp(1j * (true + offset)))
    assert phase_error(pred, true, magnitude) == pytest.approx(0.0, abs=1e-9)
    assert phase_error(pred, true, magnitude, remove_global=False) == pytest.approx(abs(offset), abs=1e-9)


def test_phase_error_wraps_differences():
    true, magnitude = _phase_case()
    pred = np.angle(np.exp(1j * (true + 4.0)))  # +4 rad is -(2*pi - 4) rad after wrapping
    assert phase_error(pred, true, magnitude, remove_global=False) == pytest.approx(2 * np.pi - 4, abs=1e-9)
    eps = 1e-3
    near_pi = np.full((16, 16), np.pi - eps)
    near_minus_pi = np.full((16, 16), -np.pi + eps)
    assert phase_error(near_pi, near_minus_pi, np.ones((16, 16)), remove_global=False) == pytest.approx(
        2 * eps, abs=1e-9
    )


def test_phase_error_counts_only_the_object():
    true, magnitude = _phase_case()
    pred = true.copy()
    background = magnitude <= 0.1 * magnitude.max()
    pred[background] += 1.0  # noise outside the object is not scored
    assert phase_error(pred, true, magnitude, remove_global=False) == pytest.approx(0.0, abs=1e-12)
    pred[~background] += 0.25
    assert phase_error(pred, true, magnitude, remove_global=False) == pytest.approx(0.25, abs=1e-9)


def test_phase_error_removes_offsets_per_slice_and_takes_torch():
    true, magnitude = _phase_case(shape=(3, 32, 32))
    offsets = np.array([0.3, -2.5, 3.0])[:, None, None]
    pred = np.angle(np.exp(1j * (true + offsets)))
    as_torch = [torch.from_numpy(a).float() for a in (pred, true, magnitude)]
    assert phase_error(*as_torch) == pytest.approx(0.0, abs=1e-5)
    assert phase_error(pred, true, magnitude, remove_global=False) == pytest.approx(
        np.abs(offsets).mean(), abs=1e-9
    )


def test_phase_error_argument_errors():
    true, magnitude = _phase_case()
    with pytest.raises(ValueError, match="shapes differ"):
        phase_error(true[:-1], true, magnitude)
    with pytest.raises(ValueError, match="threshold"):
        phase_error(true, true, np.zeros_like(magnitude))


@pytest.mark.parametrize(("slope_x", "slope_y"), [(0.05, 0.0), (0.3, -0.4), (-1.2, 0.7)])
def test_phase_gradient_stats_of_a_ramp(slope_x, slope_y):
    # the ramp wraps many times over the image; the wrap-aware gradient is still the slope
    h, w = 64, 48
    y, x = np.mgrid[0:h, 0:w]
    phase = np.angle(np.exp(1j * (slope_x * x + slope_y * y)))
    stats = phase_gradient_stats(phase, np.ones((h, w)))
    slope = np.hypot(slope_x, slope_y)
    assert stats["gradient_median"] == pytest.approx(slope, abs=1e-9)
    assert stats["gradient_p95"] == pytest.approx(slope, abs=1e-9)
    assert stats["object_fraction"] == 1.0


def test_phase_gradient_stats_spread_and_mask():
    rng = np.random.default_rng(0)
    h = w = 128
    magnitude = np.zeros((2, h, w))
    magnitude[:, 16:112, 16:112] = 1.0
    sigma = 0.2
    phase = np.where(
        magnitude > 0, 1.3 + rng.normal(0, sigma, (2, h, w)), rng.uniform(-np.pi, np.pi, (2, h, w))
    )
    phase[1] -= 2.9  # a different global phase per slice, removed before the spread is measured
    stats = phase_gradient_stats(torch.from_numpy(np.angle(np.exp(1j * phase))), magnitude)
    assert stats["phase_std"] == pytest.approx(sigma, rel=0.03)
    assert stats["phase_p05"] == pytest.approx(-1.645 * sigma, rel=0.05)
    assert stats["phase_p95"] == pytest.approx(1.645 * sigma, rel=0.05)
    assert stats["object_fraction"] == pytest.approx((96 / 128) ** 2)
    # differences of iid noise: each component ~ N(0, 2 sigma^2), magnitude Rayleigh(sqrt(2) sigma)
    rayleigh_scale = np.sqrt(2) * sigma
    assert stats["gradient_median"] == pytest.approx(rayleigh_scale * np.sqrt(2 * np.log(2)), rel=0.05)
    assert stats["gradient_p95"] == pytest.approx(rayleigh_scale * np.sqrt(-2 * np.log(0.05)), rel=0.05)
