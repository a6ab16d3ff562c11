"""Phase-safe geometry: centre crops and Fourier-domain resizing of complex images (never of angles)."""

import math

import torch

from phaselab.mri.fft import fft2c, ifft2c


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def center_crop(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Crop the last two dims to ``shape`` around the centre (fastMRI's convention: start (N - n) // 2).

    Plain slicing, so it works on torch tensors and numpy arrays, real or complex.
    """
    h, w = _pair(shape)
    height, width = x.shape[-2], x.shape[-1]
    if not (0 < h <= height and 0 < w <= width):
        raise ValueError(f"cannot crop {(height, width)} to {(h, w)}")
    top, left = (height - h) // 2, (width - w) // 2
    return x[..., top : top + h, left : left + w]


def _resize_centered_axis(kspace: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Crop or zero-pad centred k-space along ``dim`` so that DC (index N // 2) stays at size // 2.

    Nyquist bins are treated as scipy.signal.resample does, which keeps a real image real (and so a
    constant-phase image at its phase): when shrinking to an even size the two bins at +-size/2 alias
    onto one and are summed; when growing from an even size the lone -N/2 bin is split half/half.
    """
    n_in = kspace.shape[dim]
    if size == n_in:
        return kspace
    out_shape = list(kspace.shape)
    out_shape[dim] = size
    out = kspace.new_zeros(out_shape)
    if size < n_in:
        start = n_in // 2 - size // 2
        out.copy_(kspace.narrow(dim, start, size))
        if size % 2 == 0:
            positive_nyquist = kspace.narrow(dim, start + size, 1)
            out.narrow(dim, 0, 1).add_(positive_nyquist)
    else:
        start = size // 2 - n_in // 2
        out.narrow(dim, start, n_in).copy_(kspace)
        if n_in % 2 == 0:
            half = kspace.narrow(dim, 0, 1) / 2
            out.narrow(dim, start, 1).copy_(half)
            out.narrow(dim, start + n_in, 1).copy_(half)
    return out


def fourier_resize(image: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resample a complex image (..., H, W) to ``size`` by cropping / zero-padding its centred k-space.

    The field of view is kept; only the sampling changes. Scaling: with the orthonormal FFT a
    constant image c has DC coefficient c * sqrt(H * W), so the result is multiplied by
    sqrt(h * w / (H * W)) (= size_out / size_in for square images) to keep pixel values - a constant
    image keeps its value, and a band-limited image is sampled exactly on the finer grid.
    """
    if not torch.is_complex(image):
        raise TypeError(f"fourier_resize needs a complex image, got {image.dtype}; resample before angle()")
    h, w = _pair(size)
    height, width = image.shape[-2], image.shape[-1]
    if (h, w) == (height, width):
        return image
    kspace = fft2c(image)
    kspace = _resize_centered_axis(kspace, h, kspace.ndim - 2)
    kspace = _resize_centered_axis(kspace, w, kspace.ndim - 1)
    return ifft2c(kspace) * math.sqrt((h * w) / (height * width))


def kspace_to_working_image(
    kspace: torch.Tensor, crop: tuple[int, int] | None = (320, 320), size: int | tuple[int, int] | None = 256
) -> torch.Tensor:
    """Complex working image from centred k-space (..., H, W): ifft2c, crop each dim to the fastMRI FOV
    where the image is larger (readout oversampling), then Fourier-resize to ``size``."""
    kspace = torch.as_tensor(kspace)
    image = ifft2c(kspace)
    if crop is not None:
        ch, cw = _pair(crop)
        image = center_crop(image, (min(ch, image.shape[-2]), min(cw, image.shape[-1])))
    if size is not None:
        image = fourier_resize(image, size)
    return image
