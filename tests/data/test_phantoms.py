"""Phantom dataset: determinism, anatomy, realistic phase statistics, fastMRI files."""

import os

import numpy as np
import pytest

from phaselab.data import phantoms
from phaselab.data.errors import DataError
from phaselab.data.fastmri_io import read_volume
from phaselab.data.phantoms import (
    AIR,
    FAT,
    KINDS,
    make_phantom_slice,
    make_phantom_volume,
    write_phantom_dataset,
)
from phaselab.mri.metrics import phase_gradient_stats


def _wrap(angle):
    return np.angle(np.exp(1j * angle))


def _object(volume, threshold=0.1):
    magnitude = np.abs(volume.image)
    return magnitude > threshold * magnitude.max(axis=(-2, -1), keepdims=True)


@pytest.fixture(scope="module", params=KINDS)
def kind(request):
    return request.param


@pytest.fixture(scope="module")
def volumes64(kind):
    return [make_phantom_volume(kind, 64, 6, seed=3, patient_index=p) for p in range(6)]


# ---- determinism and anatomy ---------------------------------------------------------------------


def test_same_seed_gives_identical_arrays(kind):
    a = make_phantom_volume(kind, 48, 3, seed=7, patient_index=2)
    b = make_phantom_volume(kind, 48, 3, seed=7, patient_index=2)
    for name in a._fields:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_other_patient_or_seed_differs(kind):
    base = make_phantom_volume(kind, 48, 2, seed=7, patient_index=2)
    for other in (
        make_phantom_volume(kind, 48, 2, seed=7, patient_index=3),
        make_phantom_volume(kind, 48, 2, seed=8, patient_index=2),
    ):
        assert np.abs(other.magnitude - base.magnitude).mean() > 0.05
        assert (other.labels != base.labels).mean() > 0.1


def test_types_and_shapes():
    v = make_phantom_volume("knee", 40, 3, seed=0, patient_index=0)
    assert v.kspace.shape == v.image.shape == v.phase.shape == v.labels.shape == (3, 40, 40)
    assert v.kspace.dtype == v.image.dtype == np.complex64
    assert v.phase.dtype == v.magnitude.dtype == v.anatomy_phase.dtype == np.float32
    assert v.labels.dtype == np.uint8
    assert np.all(np.abs(v.phase) <= np.pi + 1e-6)
    # k-space is the centered orthonormal FFT of the image
    image = np.fft.fftshift(
        np.fft.ifft2(np.fft.ifftshift(v.kspace, axes=(-2, -1)), norm="ortho"), axes=(-2, -1)
    )
    np.testing.assert_allclose(image, v.image, atol=1e-5)


def test_slice_function_matches_volume():
    v = make_phantom_volume("brain", 48, 5, seed=1, patient_index=4)
    s = make_phantom_slice("brain", 48, seed=1, patient_index=4, slice_index=3, slices=5)
    np.testing.assert_array_equal(s.image, v.image[3])
    np.testing.assert_array_equal(s.labels, v.labels[3])


def test_neighbouring_slices_are_similar_not_identical(volumes64):
    neighbour_diff, neighbour_corr = [], []
    for v in volumes64:
        for s in range(v.magnitude.shape[0] - 1):
            a, b = v.magnitude[s], v.magnitude[s + 1]
            assert np.abs(a - b).mean() > 1e-3
            neighbour_corr.append(np.corrcoef(a.ravel(), b.ravel())[0, 1])
            neighbour_diff.append((v.labels[s] != v.labels[s + 1]).mean())
    assert min(neighbour_corr) > 0.85
    assert max(neighbour_diff) < 0.2
    # the same slice of different patients differs much more than neighbouring slices of one patient
    pairs = [(a, b) for i, a in enumerate(volumes64) for b in volumes64[i + 1 :]]
    patient_diff = [(a.labels[2] != b.labels[2]).mean() for a, b in pairs]
    patient_corr = [np.corrcoef(a.magnitude[2].ravel(), b.magnitude[2].ravel())[0, 1] for a, b in pairs]
    assert min(patient_diff) > 0.1
    assert np.mean(patient_diff) > 2 * np.mean(neighbour_diff)
    assert max(patient_corr) < min(neighbour_corr)


def test_anatomy_has_the_expected_tissues(kind, volumes64):
    labels = np.concatenate([v.labels for v in volumes64])
    expected = {
        "knee": {"fat": 0.05, "muscle": 0.1, "bone": 0.02, "marrow": 0.05, "cartilage": 0.003},
        "brain": {"fat": 0.02, "bone": 0.02, "csf": 0.02, "grey": 0.05, "white": 0.05},
    }
    for name, fraction in expected[kind].items():
        assert (labels == phantoms.TISSUES.index(name)).mean() > fraction, name
    assert 0.2 < (labels != AIR).mean() < 0.9


# ---- phase -----------------------------------------------------------------------------------------


# Gradient ranges (rad/pixel, phaselab.mri.metrics.phase_gradient_stats) per image size. 256: SPEC
# section 2. Smaller sizes: lower bounds from the real brain coil images of SPEC section 2 resampled
# with fourier_resize (median 0.095-0.10 at 64, 0.058-0.068 at 128); upper bounds SPEC x 256 / size.
GRADIENT_RANGES = {
    64: {"median": (0.06, 0.24), "p95": (0.2, 1.04)},
    128: {"median": (0.035, 0.12), "p95": (0.15, 0.52)},
    256: {"median": (0.04, 0.065), "p95": (0.13, 0.28)},
}


@pytest.mark.parametrize("size", sorted(GRADIENT_RANGES))
def test_phase_statistics_match_real_data(kind, size):
    ranges = GRADIENT_RANGES[size]
    for patient in range(3 if size < 256 else 2):
        v = make_phantom_volume(kind, size, 4 if size < 256 else 2, seed=11, patient_index=patient)
        stats = phase_gradient_stats(np.angle(v.image), np.abs(v.image))
        assert 0.4 <= stats["phase_std"] <= 0.85, stats
        assert -1.6 <= stats["phase_p05"] <= -0.4, stats
        assert 0.4 <= stats["phase_p95"] <= 1.6, stats
        low, high = ranges["median"]
        assert low <= stats["gradient_median"] <= high, stats
        low, high = ranges["p95"]
        assert low <= stats["gradient_p95"] <= high, stats


def test_phase_outside_the_object_is_uniform(kind, volumes64):
    for v in volumes64:
        air = v.magnitude < 1e-6
        assert air.mean() > 0.1
        resultant = np.abs(np.exp(1j * np.angle(v.image[air])).mean())
        assert resultant < 0.05


def test_anatomy_tied_phase_carries_a_large_share(volumes64):
    """Tissue offsets + susceptibility dominate the smooth B0/coil part inside the object."""
    shares = []
    for v in volumes64:
        inside = _object(v)
        anatomy = v.anatomy_phase[inside]
        smooth = _wrap(v.phase - v.anatomy_phase)[inside]
        smooth = _wrap(smooth - np.angle(np.exp(1j * smooth).mean()))  # spread around the circular mean
        assert anatomy.std() > 0.3
        shares.append(anatomy.var() / (anatomy.var() + smooth.var()))
    assert min(shares) > 0.3
    assert np.median(shares) > 0.6


def test_phase_is_not_explained_by_a_smooth_field(volumes64):
    """What a low-order polynomial fit to the true phase leaves is large: the anatomy-tied part."""
    for v in volumes64[:3]:
        h, w = v.phase.shape[-2:]
        y, x = np.mgrid[-1 : 1 : h * 1j, -1 : 1 : w * 1j]
        basis = np.stack([x**i * y**j for i in range(4) for j in range(4 - i)], -1)
        for s in range(v.phase.shape[0]):
            inside = _object(v)[s]
            phasor = np.exp(1j * v.phase[s])
            centred = np.angle(phasor * np.conj(phasor[inside].mean()))
            coef, *_ = np.linalg.lstsq(basis[inside], centred[inside], rcond=None)
            residual = _wrap(centred[inside] - basis[inside] @ coef)
            assert residual.std() > 0.2


def test_fat_phase_offset_is_consistent(volumes64):
    """Fat lies at a positive phase offset from the non-fatty tissue next to it, in every patient."""
    for v in volumes64:
        watery = ~np.isin(v.labels, [AIR, FAT, phantoms.MARROW, phantoms.SINUS])
        steps = []
        for axis in (-1, -2):
            for shift in (-3, 3):
                fat_there = np.roll(v.labels, shift, axis=axis) == FAT
                diff = _wrap(np.roll(v.phase, shift, axis=axis) - v.phase)
                steps.append(diff[watery & fat_there])
        steps = np.concatenate(steps)
        assert steps.size > 20
        assert np.median(steps) > 0.5


def test_noise_level_and_validation():
    quiet = make_phantom_volume("knee", 32, 1, seed=0, patient_index=0, noise=0.0)
    np.testing.assert_allclose(np.abs(quiet.image), quiet.magnitude, atol=1e-5)
    loud = make_phantom_volume("knee", 32, 1, seed=0, patient_index=0, noise=0.1)
    air = quiet.magnitude < 1e-6
    assert abs(loud.image[air].real.std() - 0.1) < 0.02
    for bad in (
        dict(kind="hand"),
        dict(size=16),
        dict(slices=0),
        dict(noise=-1.0),
        dict(patient_index=-1),
    ):
        args = dict(kind="knee", size=32, slices=1, seed=0, patient_index=0) | bad
        with pytest.raises(ValueError):
            make_phantom_volume(**args)


# ---- fastMRI files -------------------------------------------------------------------------------


def test_dataset_files_round_trip(tmp_path):
    paths = write_phantom_dataset(tmp_path, patients=2, slices=3, size=32, kind="brain", seed=5)
    assert [p.name for p in paths] == ["phantom_brain_p000.h5", "phantom_brain_p001.h5"]
    expected = make_phantom_volume("brain", 32, 3, seed=5, patient_index=1)
    volume = read_volume(paths[1])
    np.testing.assert_array_equal(volume.kspace, expected.kspace)
    np.testing.assert_allclose(volume.target, np.abs(expected.image), rtol=1e-6)
    assert volume.target_key == "reconstruction_esc"
    np.testing.assert_array_equal(volume.extras["phaselab_labels"], expected.labels)
    np.testing.assert_array_equal(volume.extras["phaselab_clean_phase"], expected.phase)
    assert volume.attrs["patient_id"] == "phantom-brain-001"
    assert volume.attrs["phaselab_source"] == "phantom"
    assert volume.attrs["phaselab_kind"] == "brain"
    assert volume.attrs["phaselab_seed"] == 5
    assert volume.attrs["phaselab_version"] == phantoms.PHANTOM_VERSION


def test_files_load_with_the_fastmri_package(tmp_path):
    fastmri_data = pytest.importorskip("fastmri.data")
    write_phantom_dataset(tmp_path, patients=2, slices=2, size=32)
    dataset = fastmri_data.SliceDataset(tmp_path, challenge="singlecoil")
    assert len(dataset) == 4
    kspace, mask, target, attrs, fname, slice_num = dataset[3]
    assert kspace.shape == (32, 32) and np.iscomplexobj(kspace)
    assert target.shape == (32, 32)
    assert fname == "phantom_knee_p001.h5" and slice_num == 1


def test_rerun_skips_existing_files_and_refuses_other_settings(tmp_path):
    first = write_phantom_dataset(tmp_path, patients=2, slices=2, size=32)
    stamps = [os.stat(p).st_mtime_ns for p in first]
    again = write_phantom_dataset(tmp_path, patients=3, slices=2, size=32)
    assert again[:2] == first
    assert [os.stat(p).st_mtime_ns for p in first] == stamps
    assert again[2].is_file()
    # other settings (or fewer patients) would mix two datasets in one folder: refused, nothing written
    for other in ({"patients": 3, "seed": 1}, {"patients": 3, "size": 64}, {"patients": 1}):
        settings = {"patients": 3, "slices": 2, "size": 32, **other}
        with pytest.raises(DataError, match="other settings"):
            write_phantom_dataset(tmp_path, **settings)
    assert [os.stat(p).st_mtime_ns for p in first] == stamps
    first[1].write_bytes(b"truncated")  # a killed run's partial file is ours: written again
    write_phantom_dataset(tmp_path, patients=3, slices=2, size=32)
    assert read_volume(first[1]).kspace.shape == (2, 32, 32)


def test_dataset_argument_checks(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        write_phantom_dataset(tmp_path, patients=1, slices=1, size=32, kind="hand")
    with pytest.raises(ValueError, match="size"):
        write_phantom_dataset(tmp_path, patients=1, slices=1, size=8)
    with pytest.raises(ValueError, match="patients"):
        write_phantom_dataset(tmp_path, patients=0, slices=1, size=32)
    assert not list(tmp_path.iterdir())
