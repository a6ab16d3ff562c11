"""Real 4-channel brain coil images (gpuNUFFT test data, MIT; see gpunufft_brain4ch/PROVENANCE.txt)."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from phaselab.data.coils import compress_coils
from phaselab.data.fastmri_io import read_volume, write_volume
from phaselab.mri.fft import fft2c, ifft2c
from phaselab.mri.metrics import phase_gradient_stats, ssim
from phaselab.mri.phase import phase_of

MAT = Path(__file__).parent / "gpunufft_brain4ch" / "img_brain_4ch.mat"


@pytest.fixture(scope="module")
def coil_images() -> torch.Tensor:
    """(1, 4, 256, 256) complex64 coil images."""
    img = scipy.io.loadmat(MAT)["img"]  # (256, 256, 4) complex128
    assert img.shape == (256, 256, 4) and np.iscomplexobj(img)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)[None])).to(torch.complex64)


def _max_normalized(x: np.ndarray) -> np.ndarray:
    return x / x.max()


def test_multicoil_volume_compresses_to_a_faithful_virtual_coil(coil_images, tmp_path):
    kspace = fft2c(coil_images)
    rss = coil_images.abs().pow(2).sum(1).sqrt().numpy()
    path = write_volume(
        tmp_path / "brain4ch.h5", kspace, patient_id="gpunufft", acquisition="AXT2", target=rss
    )
    volume = read_volume(path)
    assert volume.is_multicoil and volume.target_key == "reconstruction_rss"
    assert np.array_equal(volume.kspace, kspace.numpy()) and np.array_equal(volume.target, rss)

    virtual, info = compress_coils(torch.from_numpy(volume.kspace), "svd")
    magnitude = ifft2c(virtual).abs().numpy()
    gt = _max_normalized(volume.target)
    score = ssim(gt, _max_normalized(magnitude))
    # measured 0.954 (SVD), while the best single coil scores 0.84: compression keeps the anatomy
    assert score > 0.95
    best_single = max(ssim(gt, _max_normalized(coil_images[:, c].abs().numpy())) for c in range(4))
    assert score > best_single + 0.08
    assert 0.6 < info["energy_fraction"] < 0.8  # measured 0.69: four coils with distinct profiles

    # the virtual coil carries real coil phase in SPEC section 2's single-coil / SVD range
    stats = phase_gradient_stats(phase_of(ifft2c(virtual)).numpy(), magnitude)
    assert 0.4 < stats["phase_std"] < 0.8
    assert 0.02 < stats["gradient_median"] < 0.1


def test_single_coil_phase_survives_write_and_read_exactly(coil_images, tmp_path):
    virtual, info = compress_coils(fft2c(coil_images), "svd")
    image = ifft2c(virtual)
    kspace = fft2c(image).numpy()
    phase_before = phase_of(ifft2c(torch.from_numpy(kspace)))
    path = write_volume(
        tmp_path / "virtual.h5",
        kspace,
        patient_id="gpunufft",
        target=np.abs(image.numpy()),
        extras={"phaselab_phase": phase_before.numpy()},
        extra_attrs={"coil_compression": info["method"], "coil_energy_fraction": info["energy_fraction"]},
    )
    volume = read_volume(path)
    assert volume.kspace.dtype == np.complex64 and np.array_equal(volume.kspace, kspace)
    phase_after = phase_of(ifft2c(torch.from_numpy(volume.kspace)))
    assert np.array_equal(phase_after.numpy(), phase_before.numpy())
    assert np.array_equal(volume.extras["phaselab_phase"], phase_before.numpy())
    assert volume.attrs["phaselab_coil_compression"] == "svd"
    assert volume.attrs["phaselab_coil_energy_fraction"] == pytest.approx(info["energy_fraction"])
