import numpy as np
import pytest
import torch

from phaselab.data.coils import compress_coils
from phaselab.mri.fft import fft2c, ifft2c


def _grid(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")


def _object(slices: int, n: int) -> torch.Tensor:
    """Complex object (S, n, n): an ellipse with smooth phase, different per slice."""
    y, x = _grid(n)
    inside = ((x / 0.8) ** 2 + (y / 0.6) ** 2 < 1).float()
    frames = [inside * (1 + 0.2 * s * x) * torch.exp(1j * (0.8 * x + 0.5 * s * y)) for s in range(slices)]
    return torch.stack(frames).to(torch.complex64)


def _sensitivities(coils: int, n: int) -> torch.Tensor:
    """Smooth complex coil profiles (C, n, n) placed around the object."""
    y, x = _grid(n)
    profiles = []
    for c in range(coils):
        angle = 2 * np.pi * c / coils
        cx, cy = 1.2 * np.cos(angle), 1.2 * np.sin(angle)
        magnitude = torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 1.5)
        profiles.append(magnitude * torch.exp(1j * (angle + 0.7 * (x * np.cos(angle) - y * np.sin(angle)))))
    return torch.stack(profiles).to(torch.complex64)


def test_rank_one_coils_are_recovered_exactly():
    # sensitivities a_c * g(x): one virtual coil holds all the energy and equals ||a|| g m, with the
    # phase convention "largest weight real positive" fixing the global phase to angle(a_largest).
    obj = _object(3, 32)
    y, x = _grid(32)
    profile = torch.exp(-(x**2 + y**2)).to(torch.complex64)
    a = torch.tensor([0.3 + 0.4j, -1.0 + 0.5j, 0.2 - 0.1j, 0.5j], dtype=torch.complex64)
    kspace = fft2c(a[None, :, None, None] * profile * obj[:, None])
    expected = a.abs().pow(2).sum().sqrt() * torch.exp(1j * a[1].angle()) * profile * obj
    for method in ("svd", "geometric"):
        virtual, info = compress_coils(kspace, method)
        assert virtual.shape == (3, 32, 32) and virtual.dtype == torch.complex64
        assert info["method"] == method and info["coils"] == 4
        assert set(info) == {"method", "coils", "energy_fraction"}  # plain values, storable as attrs
        assert info["energy_fraction"] == pytest.approx(1.0, abs=1e-6)
        assert torch.allclose(ifft2c(virtual), expected, atol=1e-5)


def test_realistic_coils_keep_magnitude_structure_and_smooth_phase():
    obj = _object(2, 48)
    coil_images = _sensitivities(8, 48)[None] * obj[:, None]
    kspace = fft2c(coil_images)
    rss = coil_images.abs().pow(2).sum(1).sqrt()
    inside = rss > 0.1 * rss.max()
    infos = {}
    for method in ("svd", "geometric"):
        virtual, infos[method] = compress_coils(kspace, method)
        image = ifft2c(virtual)
        assert 0.3 < infos[method]["energy_fraction"] < 1.0
        # Cauchy-Schwarz: one unit-norm combination never exceeds the root sum of squares
        assert (image.abs() <= rss * (1 + 1e-4) + 1e-6).all()
        # ... and a fixed combination of smooth profiles only shades it: no cancellation holes
        assert (image.abs() / rss)[inside].min() > 0.5
        # the virtual coil phase is smooth inside the object: no jumps between rows or columns
        for dim in (-2, -1):
            step = torch.angle(image.narrow(dim, 1, 47) * image.narrow(dim, 0, 47).conj())
            both = inside.narrow(dim, 1, 47) & inside.narrow(dim, 0, 47)
            assert step[both].abs().quantile(0.95) < 0.25
    # per-row compression is optimal row by row, so it keeps at least the global SVD's energy
    assert infos["geometric"]["energy_fraction"] >= infos["svd"]["energy_fraction"] - 1e-9


def test_numpy_in_numpy_out_and_errors():
    kspace = fft2c(_sensitivities(3, 16)[None] * _object(1, 16)[:, None]).numpy()
    virtual, info = compress_coils(kspace)
    assert isinstance(virtual, np.ndarray) and virtual.shape == (1, 16, 16)
    assert info["method"] == "svd"
    with pytest.raises(ValueError, match="unknown coil compression method 'espirit'"):
        compress_coils(kspace, "espirit")
    with pytest.raises(ValueError, match=r"\(S, C, H, W\)"):
        compress_coils(kspace[0])
    with pytest.raises(ValueError, match="complex"):
        compress_coils(np.abs(kspace))
