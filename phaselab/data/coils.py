"""Coil compression of multi-coil k-space to one virtual coil (SVD or geometric), with a record of how."""

from typing import Any

import numpy as np
import torch

METHODS = ("svd", "geometric")


def _principal_vectors(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Principal eigenvector (..., C) and eigenvalues (..., C) of the coil covariance of (..., C, N)."""
    covariance = samples @ samples.conj().transpose(-2, -1)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    return eigenvectors[..., -1], eigenvalues.clamp_min(0)


def _real_positive_largest(vector: torch.Tensor) -> torch.Tensor:
    """Fix the arbitrary global phase of an eigenvector: its largest entry becomes real positive."""
    largest = vector.gather(-1, vector.abs().argmax(dim=-1, keepdim=True))
    return vector * (largest.conj() / largest.abs().clamp_min(1e-30))


def _svd(kspace: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
    # One weight vector for the whole volume: the virtual coil is a fixed complex combination of the
    # coil images, so it carries the coils' own smooth phase (no per-pixel phase estimate).
    coils = kspace.shape[1]
    samples = kspace.transpose(0, 1).reshape(coils, -1)
    weights, eigenvalues = _principal_vectors(samples.to(torch.complex128))
    weights = _real_positive_largest(weights)
    virtual = torch.einsum("c,scxy->sxy", weights.conj().to(kspace.dtype), kspace)
    kept = float(eigenvalues[-1] / eigenvalues.sum())
    return virtual, {"method": "svd", "coils": coils, "energy_fraction": kept}


def _geometric(kspace: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
    """Zhang et al. 2013 (MRM 69:571): one compression vector per readout position (rows, H, after an
    inverse FFT along the readout), phase-aligned to its neighbour so the virtual coil stays smooth."""
    slices, coils, height, width = kspace.shape
    dtype = kspace.dtype
    hybrid = torch.fft.fftshift(
        torch.fft.ifft(torch.fft.ifftshift(kspace, dim=2), dim=2, norm="ortho"), dim=2
    ).to(torch.complex128)
    samples = hybrid.permute(2, 1, 0, 3).reshape(height, coils, slices * width)
    weights, eigenvalues = _principal_vectors(samples)  # (H, C), (H, C)
    centre = height // 2
    weights[centre] = _real_positive_largest(weights[centre])
    for order in (range(centre + 1, height), range(centre - 1, -1, -1)):
        for row in order:
            neighbour = row - 1 if row > centre else row + 1
            overlap = torch.vdot(weights[neighbour], weights[row])
            weights[row] = weights[row] * (overlap.conj() / overlap.abs().clamp_min(1e-30))
    virtual = torch.einsum("xc,scxy->sxy", weights.conj(), hybrid)
    virtual = torch.fft.fftshift(
        torch.fft.fft(torch.fft.ifftshift(virtual, dim=1), dim=1, norm="ortho"), dim=1
    )
    kept = float(eigenvalues[:, -1].sum() / eigenvalues.sum())
    return virtual.to(dtype), {
        "method": "geometric",
        "coils": coils,
        "energy_fraction": kept,
    }


def compress_coils(kspace: Any, method: str = "svd") -> tuple[Any, dict[str, Any]]:
    """Compress (S, C, H, W) complex k-space (numpy or torch) to one virtual coil (S, H, W).

    ``svd``: the principal component of the coil covariance over all samples of the volume.
    ``geometric``: one principal component per readout row, phase-aligned along the readout.
    ``info`` (plain str/int/float, ready for ``write_volume(extra_attrs=...)``) holds ``method``,
    ``coils`` (input count) and ``energy_fraction`` (eigenvalue energy kept, in [0, 1]).
    Returns the same array type as given.
    """
    if method not in METHODS:
        raise ValueError(f"unknown coil compression method {method!r}; choose from {METHODS}")
    is_numpy = not isinstance(kspace, torch.Tensor)
    tensor = torch.as_tensor(np.asarray(kspace)) if is_numpy else kspace
    if not torch.is_complex(tensor) or tensor.ndim != 4:
        raise ValueError(f"expected complex k-space (S, C, H, W), got {tensor.dtype} {tuple(tensor.shape)}")
    virtual, info = _svd(tensor) if method == "svd" else _geometric(tensor)
    if is_numpy:
        return virtual.numpy(), info
    return virtual, info
