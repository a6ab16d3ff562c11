"""Coil compression of multi-coil k-space to one virtual coil (SVD or geometric), with a record of how."""

from typing import Any

import numpy as np
import torch

METHODS = ("svd", "geometric")


def _principal(covariance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Principal eigenvector (..., C) and eigenvalues (..., C) of Hermitian covariances (..., C, C)."""
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    return eigenvectors[..., -1], eigenvalues.clamp_min(0)


def _real_positive_largest(vector: torch.Tensor) -> torch.Tensor:
    """Fix the arbitrary global phase of an eigenvector: its largest entry becomes real positive."""
    largest = vector.gather(-1, vector.abs().argmax(dim=-1, keepdim=True))
    return vector * (largest.conj() / largest.abs().clamp_min(1e-30))


def _along_readout(data: torch.Tensor, dim: int, inverse: bool) -> torch.Tensor:
    """Centred orthonormal 1-D (i)FFT along the readout, as ``ifft2c`` does in 2-D."""
    transform = torch.fft.ifft if inverse else torch.fft.fft
    shifted = torch.fft.ifftshift(data, dim=dim)
    return torch.fft.fftshift(transform(shifted, dim=dim, norm="ortho"), dim=dim)


def _svd(kspace: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
    # One weight vector for the whole volume: the virtual coil is a fixed complex combination of the
    # coil images, so it carries the coils' own smooth phase (no per-pixel phase estimate).
    coils = kspace.shape[1]
    # accumulated slice by slice in float64: no full-volume copy, no float32 round-off over ~1e8 samples
    covariance = torch.zeros(coils, coils, dtype=torch.complex128)
    for volume_slice in kspace:
        samples = volume_slice.reshape(coils, -1).to(torch.complex128)
        covariance += samples @ samples.conj().T
    weights, eigenvalues = _principal(covariance)
    weights = _real_positive_largest(weights)
    virtual = torch.einsum("c,scxy->sxy", weights.conj().to(kspace.dtype), kspace)
    kept = float(eigenvalues[-1] / eigenvalues.sum())
    return virtual, {"method": "svd", "coils": coils, "energy_fraction": kept}


def _geometric(kspace: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
    """Zhang et al. 2013 (MRM 69:571): one compression vector per readout position (rows, H, after an
    inverse FFT along the readout), phase-aligned to its neighbour so the virtual coil stays smooth."""
    coils, height = kspace.shape[1], kspace.shape[2]
    hybrid = _along_readout(kspace, dim=2, inverse=True)  # (S, C, x, ky)
    covariance = torch.zeros(height, coils, coils, dtype=torch.complex128)
    for volume_slice in hybrid:
        samples = volume_slice.transpose(0, 1).to(torch.complex128)  # (x, C, ky)
        covariance += samples @ samples.conj().transpose(-2, -1)
    weights, eigenvalues = _principal(covariance)  # (H, C), (H, C)
    centre = height // 2
    weights[centre] = _real_positive_largest(weights[centre])
    for order in (range(centre + 1, height), range(centre - 1, -1, -1)):
        for row in order:
            neighbour = row - 1 if row > centre else row + 1
            overlap = torch.vdot(weights[neighbour], weights[row])
            weights[row] = weights[row] * (overlap.conj() / overlap.abs().clamp_min(1e-30))
    virtual = torch.einsum("xc,scxy->sxy", weights.conj().to(kspace.dtype), hybrid)
    kept = float(eigenvalues[:, -1].sum() / eigenvalues.sum())
    info = {"method": "geometric", "coils": coils, "energy_fraction": kept}
    return _along_readout(virtual, dim=1, inverse=False), info


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
