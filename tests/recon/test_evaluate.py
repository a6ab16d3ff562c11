"""Test-time evaluation: rows and summary match direct metric calls; a trained model beats zero-filling."""

import numpy as np
import pytest
import torch

from phaselab.mri import metrics
from phaselab.mri.fft import ifft2c
from phaselab.mri.masks import equispaced_mask
from phaselab.recon.evaluate import SUMMARY_KEYS, evaluate_reconstruction


def _volumes(slices):
    # three "volumes" of two slices from the overfit images
    return [(f"vol{v}", slices.kspace[2 * v : 2 * v + 2], slices.target[2 * v : 2 * v + 2]) for v in range(3)]


def test_summary_matches_direct_metric_calls_and_beats_zero_filled(overfit_run):
    model, slices = overfit_run.result.model, overfit_run.slices
    mask = equispaced_mask(32, 4, 4, offset=1)
    result = evaluate_reconstruction(model, _volumes(slices), mask, batch_size=3)
    assert result.effective_acceleration == pytest.approx(mask.effective_acceleration)
    assert set(result.summary) == set(SUMMARY_KEYS)
    per_volume = {key: [] for key in SUMMARY_KEYS}
    for name, kspace, target in _volumes(slices):
        masked = kspace * mask.columns
        with torch.no_grad():
            recon = ifft2c(model(masked, mask.columns)).abs().numpy()
        zero_filled = ifft2c(masked).abs().numpy()
        gt = target.numpy()
        for prefix, image in (("", recon), ("zf_", zero_filled)):
            per_volume[prefix + "ssim"].append(metrics.ssim(gt, image))
            per_volume[prefix + "psnr"].append(metrics.psnr(gt, image))
            per_volume[prefix + "nmse"].append(metrics.nmse(gt, image))
            per_volume[prefix + "nrmse"].append(metrics.nrmse(gt, image))
            per_volume[prefix + "mse"].append(metrics.mse(gt, image))
        row = next(r for r in result.volumes if r["volume"] == name)
        assert row["num_slices"] == 2 and row["ssim"] == pytest.approx(per_volume["ssim"][-1], rel=1e-5)
    for key in SUMMARY_KEYS:
        assert result.summary[key] == pytest.approx(float(np.mean(per_volume[key])), rel=1e-5), key
    summary = result.summary
    assert summary["ssim"] > summary["zf_ssim"] + 0.15
    assert summary["psnr"] > summary["zf_psnr"] + 3
    assert summary["nmse"] < summary["zf_nmse"] and summary["nrmse"] < summary["zf_nrmse"]
    assert summary["mse"] < summary["zf_mse"]


def test_slice_rows_use_the_volume_maximum(overfit_run):
    model, slices = overfit_run.result.model, overfit_run.slices
    mask = equispaced_mask(32, 4, 4, offset=0)
    model.train()
    result = evaluate_reconstruction(model, _volumes(slices)[:1], mask)
    rows = result.slices
    assert [(r["volume"], r["slice"]) for r in rows] == [("vol0", 0), ("vol0", 1)]
    gt = slices.target[:2].numpy()
    zero_filled = ifft2c(slices.kspace[:2] * mask.columns).abs().numpy()
    for s, row in enumerate(rows):
        assert row["zf_ssim"] == pytest.approx(
            metrics.ssim(gt[s : s + 1], zero_filled[s : s + 1], maxval=gt.max())
        )
        assert row["zf_psnr"] == pytest.approx(metrics.psnr(gt[s], zero_filled[s], maxval=gt.max()))
        assert row["zf_nrmse"] == pytest.approx(metrics.nrmse(gt[s], zero_filled[s]))
        assert row["zf_mse"] == pytest.approx(metrics.mse(gt[s], zero_filled[s]))
    assert np.mean([r["ssim"] for r in rows]) == pytest.approx(result.volumes[0]["ssim"])
    assert model.training  # the model's mode is restored


def test_bad_volumes_are_rejected(overfit_run):
    model = overfit_run.result.model
    mask = equispaced_mask(32, 4, 4, offset=0)
    with pytest.raises(ValueError, match="volume bad"):
        evaluate_reconstruction(model, [("bad", torch.zeros(2, 32, 32), torch.zeros(2, 32, 32))], mask)
    with pytest.raises(ValueError, match="no volumes"):
        evaluate_reconstruction(model, [], mask)
