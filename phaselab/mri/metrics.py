"""Image-quality metrics in the fastMRI convention (SSIM, PSNR, NMSE, NRMSE), PhaseGen's MSE, and weight-free
phase statistics.

Volumes are real arrays (S, H, W); a single image (H, W) counts as one slice.
"""

import numpy as np
import torch
import torch.nn.functional as F

SSIM_WINDOW = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03
# skimage's default (use_sample_covariance=True), which fastmri.evaluate.ssim inherits
_COV_NORM = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1)


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _real_volume(x, name: str) -> np.ndarray:
    array = _to_numpy(x)
    if np.iscomplexobj(array):
        raise ValueError(f"{name} must be real (take the magnitude first), got {array.dtype}")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"{name} must be (S, H, W) or (H, W), got shape {array.shape}")
    return array.astype(np.float64, copy=False)


def _volume_pair(gt, pred) -> tuple[np.ndarray, np.ndarray]:
    gt, pred = _real_volume(gt, "gt"), _real_volume(pred, "pred")
    if gt.shape != pred.shape:
        raise ValueError(f"gt and pred shapes differ: {gt.shape} vs {pred.shape}")
    return gt, pred


def _window_mean(x: np.ndarray) -> np.ndarray:
    """Mean over every full 7x7 window of the last two axes ('valid' region only).

    skimage filters with reflect padding and then crops the 3-pixel border, which leaves exactly
    the windows that lie inside the image; computing only those gives the same numbers.
    """
    n = SSIM_WINDOW
    rows = sum(x[..., k : x.shape[-2] - n + 1 + k, :] for k in range(n))
    both = sum(rows[..., k : x.shape[-1] - n + 1 + k] for k in range(n))
    return both / (n * n)


def ssim_per_slice(gt, pred, maxval: float | None = None) -> np.ndarray:
    """SSIM of each slice (7x7 uniform window, K1 0.01, K2 0.03, sample covariance).

    The data range is ``maxval``, else the maximum of the whole ``gt`` volume, as in fastMRI.
    """
    gt, pred = _volume_pair(gt, pred)
    if min(gt.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"slices must be at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {gt.shape[-2:]}")
    data_range = float(gt.max() if maxval is None else maxval)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    ux, uy = _window_mean(gt), _window_mean(pred)
    vx = _COV_NORM * (_window_mean(gt * gt) - ux * ux)
    vy = _COV_NORM * (_window_mean(pred * pred) - uy * uy)
    vxy = _COV_NORM * (_window_mean(gt * pred) - ux * uy)
    ssim_map = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return ssim_map.mean(axis=(-2, -1))


def ssim(gt, pred, maxval: float | None = None) -> float:
    """Mean SSIM over slices: ``fastmri.evaluate.ssim``."""
    return float(ssim_per_slice(gt, pred, maxval).mean())


def psnr(gt, pred, maxval: float | None = None) -> float:
    """PSNR of the volume in dB, peak = ``maxval`` or ``gt.max()``: ``fastmri.evaluate.psnr``."""
    gt, pred = _volume_pair(gt, pred)
    data_range = float(gt.max() if maxval is None else maxval)
    mse = float(np.mean((gt - pred) ** 2))
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(data_range**2 / mse))


def nmse(gt, pred) -> float:
    """||gt - pred||^2 / ||gt||^2 over the volume: ``fastmri.evaluate.nmse``."""
    gt, pred = _volume_pair(gt, pred)
    return float(np.sum((gt - pred) ** 2) / np.sum(gt**2))


def nrmse(gt, pred) -> float:
    """||pred - gt|| / ||gt|| over the volume (the number printed on the studies' error maps)."""
    return float(np.sqrt(nmse(gt, pred)))


def mse_per_slice(gt, pred) -> np.ndarray:
    """PhaseGen's MSE of each slice: ``mean((gt - pred)^2) / (max(gt) - min(gt))^2`` over the slice.

    The study scales every target slice to [0, 1] by its own minimum and maximum and trains the network
    to output in those units, so its MSE is the squared error after that affine map, applied to target
    and prediction alike (the shift cancels, the scale does not). Unitless, unlike PSNR's data range
    (the volume maximum). A constant target slice has no range: its value is NaN.
    """
    gt, pred = _volume_pair(gt, pred)
    value_range = gt.max(axis=(-2, -1)) - gt.min(axis=(-2, -1))
    squared = np.mean((gt - pred) ** 2, axis=(-2, -1))
    safe = np.where(value_range > 0, value_range, 1.0)
    return np.where(value_range > 0, squared / safe**2, np.nan)


def mse(gt, pred) -> float:
    """PhaseGen's reported MSE: :func:`mse_per_slice` averaged over the slices that have a range (NaN if
    none has)."""
    per_slice = mse_per_slice(gt, pred)
    valid = per_slice[~np.isnan(per_slice)]
    return float(valid.mean()) if valid.size else float("nan")


def ssim_torch(gt: torch.Tensor, pred: torch.Tensor, data_range: float | torch.Tensor) -> torch.Tensor:
    """Differentiable per-sample SSIM, same formula as :func:`ssim_per_slice`.

    ``gt``, ``pred``: (B, H, W) or (B, 1, H, W) real; ``data_range``: a number or (B,) tensor.
    Returns (B,); ``1 - ssim_torch(...).mean()`` is fastMRI's SSIM loss.
    """
    if gt.shape != pred.shape:
        raise ValueError(f"gt and pred shapes differ: {tuple(gt.shape)} vs {tuple(pred.shape)}")
    if gt.ndim == 3:
        gt, pred = gt.unsqueeze(1), pred.unsqueeze(1)
    if gt.ndim != 4 or gt.shape[1] != 1:
        raise ValueError(f"expected (B, H, W) or (B, 1, H, W), got {tuple(gt.shape)}")
    kernel = torch.full(
        (1, 1, SSIM_WINDOW, SSIM_WINDOW), 1 / SSIM_WINDOW**2, dtype=gt.dtype, device=gt.device
    )
    data_range = torch.as_tensor(data_range, dtype=gt.dtype, device=gt.device).reshape(-1, 1, 1, 1)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    ux, uy = F.conv2d(gt, kernel), F.conv2d(pred, kernel)
    vx = _COV_NORM * (F.conv2d(gt * gt, kernel) - ux * ux)
    vy = _COV_NORM * (F.conv2d(pred * pred, kernel) - uy * uy)
    vxy = _COV_NORM * (F.conv2d(gt * pred, kernel) - ux * uy)
    ssim_map = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return ssim_map.mean(dim=(1, 2, 3))


# ---- phase -------------------------------------------------------------------------------------


def _phase_volume(x, name: str) -> np.ndarray:
    array = _to_numpy(x)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"{name} must be (S, H, W) or (H, W), got shape {array.shape}")
    return array


def _wrap(angle: np.ndarray) -> np.ndarray:
    """Angle wrapped to (-pi, pi]."""
    return np.angle(np.exp(1j * angle))


def _object_mask(magnitude: np.ndarray, threshold: float) -> np.ndarray:
    """Per slice: magnitude above ``threshold`` times that slice's maximum."""
    mask = magnitude > threshold * magnitude.max(axis=(-2, -1), keepdims=True)
    if not mask.any():
        raise ValueError("no pixel lies above the magnitude threshold")
    return mask


def _remove_global_phase(phase: np.ndarray, magnitude: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Subtract each slice's magnitude-weighted circular mean phase inside ``mask``; result wrapped."""
    phasor = np.where(mask, magnitude, 0) * np.exp(1j * phase)
    offset = np.angle(phasor.sum(axis=(-2, -1), keepdims=True))
    return _wrap(phase - offset)


def phase_error(
    pred_phase, true_phase, magnitude, threshold: float = 0.1, remove_global: bool = True
) -> float:
    """Mean absolute wrapped phase difference (rad) inside the object.

    The object is magnitude > ``threshold`` x the slice maximum. With ``remove_global``, each slice's
    magnitude-weighted circular-mean offset is removed first, since a global phase is unobservable
    in magnitude reconstructions. Accepts numpy or torch, (H, W) or (S, H, W).
    """
    pred = _phase_volume(pred_phase, "pred_phase").astype(np.float64)
    true = _phase_volume(true_phase, "true_phase").astype(np.float64)
    mag = np.abs(_phase_volume(magnitude, "magnitude")).astype(np.float64)
    if not pred.shape == true.shape == mag.shape:
        raise ValueError(f"shapes differ: pred {pred.shape}, true {true.shape}, magnitude {mag.shape}")
    mask = _object_mask(mag, threshold)
    difference = _wrap(pred - true)
    if remove_global:
        difference = _remove_global_phase(difference, mag, mask)
    return float(np.abs(difference[mask]).mean())


def phase_gradient_stats(phase, magnitude, threshold: float = 0.1) -> dict[str, float]:
    """Summary of a phase map inside the object, to compare with measured real phase (SPEC section 2).

    Keys: ``gradient_median``, ``gradient_p95`` (wrap-aware gradient magnitude, rad/pixel, over pixels
    whose right and lower neighbours are also in the object); ``phase_std``, ``phase_p05``,
    ``phase_p95`` (rad, after removing each slice's global phase); ``object_fraction``.
    """
    phase = _phase_volume(phase, "phase").astype(np.float64)
    mag = np.abs(_phase_volume(magnitude, "magnitude")).astype(np.float64)
    if phase.shape != mag.shape:
        raise ValueError(f"shapes differ: phase {phase.shape}, magnitude {mag.shape}")
    mask = _object_mask(mag, threshold)

    # neighbour differences are wrapped, so a 2*pi jump between adjacent pixels counts as ~0
    grad_x = _wrap(np.diff(phase, axis=-1))[..., :-1, :]
    grad_y = _wrap(np.diff(phase, axis=-2))[..., :, :-1]
    gradient = np.hypot(grad_x, grad_y)
    gradient_mask = mask[..., :-1, :-1] & mask[..., :-1, 1:] & mask[..., 1:, :-1]
    gradients = gradient[gradient_mask]
    if gradients.size == 0:
        raise ValueError("the object has no interior pixel to take a phase gradient over")

    residual = _remove_global_phase(phase, mag, mask)[mask]
    return {
        "gradient_median": float(np.median(gradients)),
        "gradient_p95": float(np.percentile(gradients, 95)),
        "phase_std": float(residual.std()),
        "phase_p05": float(np.percentile(residual, 5)),
        "phase_p95": float(np.percentile(residual, 95)),
        "object_fraction": float(mask.mean()),
    }
