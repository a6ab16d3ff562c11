"""SSIMLoss against fastMRI's loss, the fastMRI evaluation SSIM (skimage) and basic properties."""

import numpy as np
import pytest
import torch
from fastmri.losses import SSIMLoss as FastmriSSIMLoss
from skimage.metrics import structural_similarity

from phaselab.recon.losses import SSIMLoss


def _pair(seed=0, batch=3, h=40, w=36):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(batch, h, w, generator=g) * torch.tensor([1.0, 5.0, 0.01])[:batch, None, None]
    pred = target + 0.1 * target.amax(dim=(-2, -1), keepdim=True) * torch.randn(batch, h, w, generator=g)
    return pred, target


def test_equals_fastmri_ssim_loss():
    pred, target = _pair()
    data_range = target.amax(dim=(-2, -1))
    expected = FastmriSSIMLoss()(pred.unsqueeze(1), target.unsqueeze(1), data_range)
    torch.testing.assert_close(SSIMLoss()(pred, target, data_range), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(SSIMLoss()(pred.unsqueeze(1), target.unsqueeze(1), data_range), expected)


def test_per_sample_equals_fastmri_evaluate_ssim():
    pred, target = _pair(seed=1)
    data_range = torch.tensor([2.0, 6.0, 0.02])  # not the slice maxima: the range must be honoured
    ours = SSIMLoss().per_sample(pred, target, data_range)
    for i in range(3):
        expected = structural_similarity(
            target[i].double().numpy(), pred[i].double().numpy(), data_range=float(data_range[i])
        )
        assert float(ours[i]) == pytest.approx(expected, abs=2e-5)


def test_identical_images_give_zero_loss_and_gradients_flow():
    _, target = _pair(seed=2)
    data_range = target.amax(dim=(-2, -1))
    assert float(SSIMLoss()(target, target, data_range)) == pytest.approx(0.0, abs=1e-5)
    pred = (target + 0.05 * torch.randn_like(target)).requires_grad_()
    loss = SSIMLoss()(pred, target, data_range)
    loss.backward()
    assert 0 < loss.item() < 1 and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="differ in shape"):
        SSIMLoss()(torch.zeros(1, 8, 8), torch.zeros(1, 8, 9), torch.ones(1))


def test_worse_prediction_has_higher_loss():
    _, target = _pair(seed=3)
    data_range = target.amax(dim=(-2, -1))
    rng = np.random.default_rng(0)
    noise = torch.tensor(rng.standard_normal(target.shape), dtype=torch.float32) * data_range[:, None, None]
    losses = [float(SSIMLoss()(target + s * noise, target, data_range)) for s in (0.01, 0.05, 0.2)]
    assert losses[0] < losses[1] < losses[2]
