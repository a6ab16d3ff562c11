"""Test-time scores of a reconstruction model and of the zero-filled baseline, in the fastMRI convention."""

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch

from phaselab.mri import metrics
from phaselab.mri.fft import ifft2c
from phaselab.mri.masks import Mask
from phaselab.recon.data import apply_column_masks

Reconstructor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (masked k-space, columns) -> k-space
SUMMARY_KEYS = (
    *("ssim", "psnr", "nmse", "nrmse", "mse"),
    *("zf_ssim", "zf_psnr", "zf_nmse", "zf_nrmse", "zf_mse"),
)


class EvalResult(NamedTuple):
    slices: list[dict]  # volume, slice, ssim, psnr, nrmse, mse and zf_* of each slice
    volumes: list[dict]  # volume, num_slices, ssim, psnr, nmse, nrmse, mse and zf_* of each volume
    summary: dict[str, float]  # SUMMARY_KEYS, each the mean over volumes
    effective_acceleration: float


@torch.no_grad()
def reconstruct_volume(
    model: Reconstructor,
    kspace: torch.Tensor,
    columns: torch.Tensor,
    device: str | torch.device,
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model and zero-filled magnitudes (S, H, W) float32 on CPU from fully sampled k-space (S, H, W)."""
    recon, zero_filled = [], []
    for start in range(0, kspace.shape[0], batch_size):
        masked = apply_column_masks(kspace[start : start + batch_size].to(device), columns)
        recon.append(ifft2c(model(masked, columns.to(device))).abs().float().cpu())
        zero_filled.append(ifft2c(masked).abs().float().cpu())
    return torch.cat(recon), torch.cat(zero_filled)


def _image_metrics(target: np.ndarray, image: np.ndarray, prefix: str) -> tuple[dict, list[dict]]:
    """Volume metrics and per-slice rows for one image stack; the data range is the volume maximum, except
    for PhaseGen's MSE (each slice's target range, see :func:`metrics.mse_per_slice`)."""
    maxval = float(target.max())
    per_slice_ssim = metrics.ssim_per_slice(target, image, maxval=maxval)
    per_slice_mse = metrics.mse_per_slice(target, image)
    volume = {
        f"{prefix}ssim": float(per_slice_ssim.mean()),
        f"{prefix}psnr": metrics.psnr(target, image, maxval=maxval),
        f"{prefix}nmse": metrics.nmse(target, image),
        f"{prefix}nrmse": metrics.nrmse(target, image),
        f"{prefix}mse": metrics.mse(target, image),
    }
    rows = [
        {
            f"{prefix}ssim": float(per_slice_ssim[s]),
            f"{prefix}psnr": metrics.psnr(target[s], image[s], maxval=maxval),
            f"{prefix}nrmse": metrics.nrmse(target[s], image[s]),
            f"{prefix}mse": float(per_slice_mse[s]),
        }
        for s in range(target.shape[0])
    ]
    return volume, rows


def _columns(mask: Mask | torch.Tensor) -> torch.Tensor:
    return (mask.columns if isinstance(mask, Mask) else mask).to(torch.bool)


def evaluate_reconstruction(
    model: Reconstructor,
    volumes: Sequence[tuple[str, torch.Tensor, torch.Tensor]],
    mask: Mask | torch.Tensor | Sequence[Mask | torch.Tensor],
    device: str | torch.device = "cpu",
    batch_size: int = 8,
) -> EvalResult:
    """Score ``model`` on ``(name, kspace (S, H, W) complex, target (S, H, W))`` volumes under fixed masks:
    one for all volumes, or one per volume (a sequence in the order of ``volumes``).

    The zero-filled baseline is |ifft2c(masked k-space)|. ``model`` is moved to ``device`` and put in
    eval mode for the call (its previous mode is restored). ``effective_acceleration`` is the mean over
    volumes.
    """
    if not volumes:
        raise ValueError("no volumes to evaluate")
    per_volume = isinstance(mask, list | tuple) and not isinstance(mask, Mask)  # Mask is a NamedTuple
    masks = [_columns(m) for m in mask] if per_volume else [_columns(mask)] * len(volumes)
    if len(masks) != len(volumes):
        raise ValueError(f"got {len(masks)} masks for {len(volumes)} volumes")
    was_training = isinstance(model, torch.nn.Module) and model.training
    if isinstance(model, torch.nn.Module):
        model.to(device).eval()
    slice_rows, volume_rows = [], []
    try:
        for (name, kspace, target), columns in zip(volumes, masks, strict=True):
            if not kspace.is_complex() or kspace.ndim != 3 or tuple(target.shape) != tuple(kspace.shape):
                raise ValueError(
                    f"volume {name}: need complex k-space (S, H, W) and a target of the same shape, "
                    f"got {tuple(kspace.shape)} {kspace.dtype} and {tuple(target.shape)}"
                )
            recon, zero_filled = reconstruct_volume(model, kspace, columns, device, batch_size)
            gt = target.detach().cpu().numpy().astype(np.float64)
            volume, rows = _image_metrics(gt, recon.numpy(), "")
            zf_volume, zf_rows = _image_metrics(gt, zero_filled.numpy(), "zf_")
            effective = columns.numel() / int(columns.sum())
            volume_rows.append(
                {"volume": name, "num_slices": int(gt.shape[0]), "effective_acceleration": effective}
                | volume
                | zf_volume
            )
            for s, (row, zf_row) in enumerate(zip(rows, zf_rows, strict=True)):
                slice_rows.append({"volume": name, "slice": s, **row, **zf_row})
    finally:
        if isinstance(model, torch.nn.Module):
            model.train(was_training)
    summary = {key: float(np.mean([row[key] for row in volume_rows])) for key in SUMMARY_KEYS}
    effective = float(np.mean([row["effective_acceleration"] for row in volume_rows]))
    return EvalResult(slice_rows, volume_rows, summary, effective)
