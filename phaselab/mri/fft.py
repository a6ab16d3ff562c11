"""Centered, orthonormal 2-D FFTs over the last two dimensions of complex tensors."""

import torch


def fft2c(image: torch.Tensor) -> torch.Tensor:
    """Image -> k-space, DC at the centre (index H//2, W//2), orthonormal."""
    shifted = torch.fft.ifftshift(image, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.fft2(shifted, norm="ortho"), dim=(-2, -1))


def ifft2c(kspace: torch.Tensor) -> torch.Tensor:
    """K-space (DC at the centre) -> image, orthonormal; the inverse of :func:`fft2c`."""
    shifted = torch.fft.ifftshift(kspace, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.ifft2(shifted, norm="ortho"), dim=(-2, -1))
