"""Magnitude-only inputs: real DICOM/NIfTI files against pydicom/nibabel, every bad-input kind, resizing."""

import numpy as np
import pydicom
import pytest
import torch

from phaselab.data.errors import DataError
from phaselab.data.magnitude import (
    MagnitudeInput,
    check_magnitude_array,
    find_magnitude_inputs,
    input_format,
    list_magnitude_files,
    read_magnitude_input,
    read_magnitude_volume,
    to_working_size,
)
from phaselab.data.magnitude_checks import MAX_JUMP_FRACTION, jump_fraction

from .magnitude_files import (
    EPI_4D,
    MR_SMALL,
    REAL_DIR,
    SIEMENS_MOSAIC,
    bad_files,
    brain_coil_images,
    edited_dicom,
    noise_png,
    phase_nifti,
    write_nifti,
)


def test_real_dicom_matches_pydicom():
    volume = read_magnitude_volume(MR_SMALL)
    raw = pydicom.dcmread(MR_SMALL).pixel_array
    assert volume.name == "pydicom_MR_small" and volume.source_format == "dicom"
    assert volume.magnitude.shape == (1, 64, 64) and volume.magnitude.dtype == np.float32
    # No RescaleSlope/Intercept in this file: the values are the stored int16 values, exactly.
    np.testing.assert_array_equal(volume.magnitude[0], raw.astype(np.float32))
    assert volume.magnitude.min() == 127 and volume.magnitude.max() == 2145
    assert (
        volume.meta["patient"].startswith("p")
        and volume.meta["patient"] != pydicom.dcmread(MR_SMALL).PatientID
    )


def test_real_nifti_matches_nibabel_first_and_all_volumes():
    import nibabel as nib

    data = nib.load(EPI_4D).get_fdata()  # (128, 96, 24, 2), scl_slope applied
    first = read_magnitude_volume(EPI_4D)
    assert first.name == "nibabel_example4d" and first.source_format == "nifti"
    assert first.magnitude.shape == (24, 128, 96) and first.magnitude.dtype == np.float32
    for k in (0, 11, 23):
        np.testing.assert_array_equal(first.magnitude[k], data[:, :, k, 0].astype(np.float32))
    both = read_magnitude_volume(EPI_4D, nifti_4d="all")
    assert both.magnitude.shape == (48, 128, 96)
    np.testing.assert_array_equal(both.magnitude[24 + 5], data[:, :, 5, 1].astype(np.float32))
    assert np.isfinite(both.magnitude).all() and both.magnitude.min() >= 0 and both.magnitude.max() == 1162


def test_real_mosaic_with_ramp_pixels_is_rejected_and_reads_as_plain_uint16(tmp_path):
    with pytest.raises(DataError, match=r"nibabel_0\.dcm: Siemens MOSAIC of 48 slices"):
        read_magnitude_volume(SIEMENS_MOSAIC)
    ds = pydicom.dcmread(SIEMENS_MOSAIC)
    plain = edited_dicom(SIEMENS_MOSAIC, tmp_path / "plain.dcm", ImageType=list(ds.ImageType)[:5])
    volume = read_magnitude_volume(plain)
    assert volume.magnitude.shape == (1, 256, 256)
    np.testing.assert_array_equal(volume.magnitude[0], ds.pixel_array.astype(np.float32))


def test_mosaic_unpacks_like_nibabel(tmp_path):
    from nibabel.nicom import dicomwrappers

    # 48 slices of 36x36 on a 7x7 grid: a ramp (rows and columns told apart) with a little noise, smooth
    # enough to pass as a magnitude (random pixels are refused as noise)
    rows, cols = np.mgrid[:252, :252]
    tiles = 1 + 7 * rows + 3 * cols + np.random.default_rng(0).integers(0, 50, (252, 252))
    path = edited_dicom(SIEMENS_MOSAIC, tmp_path / "mosaic.dcm", pixels=tiles)
    volume = read_magnitude_volume(path)
    reference = dicomwrappers.wrapper_from_data(pydicom.dcmread(path)).get_data()  # (36, 36, 48)
    assert volume.magnitude.shape == (48, 36, 36) and volume.meta["mosaic"]
    np.testing.assert_array_equal(volume.magnitude, np.moveaxis(reference, 2, 0).astype(np.float32))
    np.testing.assert_array_equal(volume.magnitude[8], tiles[36:72, 36:72])  # row 1, column 1 of the grid


def test_dicom_rescale_slope_and_intercept_are_applied(tmp_path):
    path = edited_dicom(MR_SMALL, tmp_path / "scaled.dcm", RescaleSlope=2.5, RescaleIntercept=-100)
    raw = pydicom.dcmread(MR_SMALL).pixel_array.astype(np.float64)
    np.testing.assert_allclose(read_magnitude_volume(path).magnitude[0], 2.5 * raw - 100, rtol=1e-6)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"Modality": "CT"}, "Modality is 'CT', expected 'MR'"),
        ({"ImageType": ["ORIGINAL", "PRIMARY", "P", "ND"]}, "marks a P image, not a magnitude"),
        ({"PhotometricInterpretation": "MONOCHROME1"}, "expected grey-scale MONOCHROME2"),
        ({"RescaleSlope": 1, "RescaleIntercept": -1000}, "negative values (min -873)"),
    ],
)
def test_dicom_that_is_not_an_mr_magnitude_is_refused(tmp_path, fields, problem):
    path = edited_dicom(MR_SMALL, tmp_path / "odd.dcm", **fields)
    with pytest.raises(DataError, match="odd.dcm: .*" + problem.replace("(", r"\(").replace(")", r"\)")):
        read_magnitude_volume(path)


def test_each_bad_file_raises_a_data_error_naming_it(tmp_path):
    expected = bad_files(tmp_path)
    for name, problem in expected.items():
        with pytest.raises(DataError) as info:
            read_magnitude_volume(tmp_path / name)
        assert info.value.path == tmp_path / name and problem in str(info.value), str(info.value)
        assert str(info.value).startswith(str(tmp_path / name))


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("complex.npy", np.ones((2, 16, 16), np.complex64), "complex values"),
        ("negative.npy", -np.ones((1, 16, 16), np.float32), "256 negative values (min -1)"),
        ("flat.npy", np.ones(16, np.float32), "expected (slices, H, W)"),
        ("tiny.npy", np.ones((4, 4), np.float32), "expected at least 8x8"),
        ("empty.npy", np.ones((0, 16, 16), np.float32), "empty image"),
        ("inf.npy", np.full((1, 16, 16), 1e39), "0 NaN and 256 inf"),  # overflows float32
        ("bool.npy", np.ones((1, 16, 16), bool), "not a real numeric image"),
    ],
)
def test_bad_arrays(tmp_path, name, data, problem):
    np.save(tmp_path / name, data)
    with pytest.raises(DataError, match=name) as info:
        read_magnitude_volume(tmp_path / name)
    assert problem in info.value.problem


def test_complex_and_five_dim_nifti_are_refused(tmp_path):
    write_nifti(tmp_path / "cplx.nii", np.ones((16, 16, 2), np.complex64))
    write_nifti(tmp_path / "five.nii", np.ones((16, 16, 2, 2, 2), np.float32))
    with pytest.raises(DataError, match=r"cplx\.nii: complex values"):
        read_magnitude_volume(tmp_path / "cplx.nii")
    with pytest.raises(DataError, match=r"five\.nii: NIfTI of 5 dims"):
        read_magnitude_volume(tmp_path / "five.nii")


def test_truncated_nifti_and_unsupported_or_missing_files(tmp_path):
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(EPI_4D.read_bytes()[:100_000])
    with pytest.raises(DataError, match=r"cut\.nii\.gz: NIfTI data unreadable"):
        read_magnitude_volume(cut)
    with pytest.raises(DataError, match=r"scan\.jpg: unsupported file type '\.jpg'"):
        read_magnitude_volume(tmp_path / "scan.jpg")
    with pytest.raises(DataError, match="gone.npy: file does not exist"):
        read_magnitude_volume(tmp_path / "gone.npy")


def test_all_zero_slices_are_dropped_and_recorded(tmp_path):
    data = np.zeros((4, 16, 16), np.float32)
    data[1] = data[3] = 1.0
    magnitude, kept = check_magnitude_array(data, tmp_path / "x.npy")
    assert kept == [1, 3] and magnitude.shape == (2, 16, 16)
    np.save(tmp_path / "pad.npy", data)
    assert read_magnitude_volume(tmp_path / "pad.npy").meta["source_slices"] == [1, 3]


def test_grey_png_and_multipage_tiff(tmp_path):
    from PIL import Image

    rows, cols = np.mgrid[:20, :24]  # a smooth image: random pixels would be refused as noise
    grey = (1000 + 2000 * rows + 900 * cols + np.random.default_rng(1).integers(0, 500, (20, 24))).astype(
        np.uint16
    )
    Image.fromarray(grey).save(tmp_path / "slice.png")
    np.testing.assert_array_equal(read_magnitude_volume(tmp_path / "slice.png").magnitude[0], grey)
    pages = [Image.fromarray((grey[:, :] // (k + 1)).astype(np.float32)) for k in range(3)]
    pages[0].save(tmp_path / "stack.tif", save_all=True, append_images=pages[1:])
    stack = read_magnitude_volume(tmp_path / "stack.tif").magnitude
    assert stack.shape == (3, 20, 24)
    np.testing.assert_array_equal(stack[2], (grey // 3).astype(np.float32))
    colour = np.zeros((20, 24, 3), np.uint8)
    colour[..., 0] = 200
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(DataError, match=r"colour\.png: colour RGB image"):
        read_magnitude_volume(tmp_path / "colour.png")


def test_a_real_phase_map_with_magnitude_values_is_refused(tmp_path):
    # a real coil's phase rescaled to 0..4095: finite, >= 0, so only its look gives it away
    path = phase_nifti(tmp_path / "coil_phase.nii.gz")
    with pytest.raises(DataError) as info:
        read_magnitude_volume(path)
    assert info.value.path == path and str(info.value).startswith(f"{path}: looks like a phase map (")
    measured = float(info.value.problem.split("(")[1].split("%")[0])
    assert 10 < measured < 20  # measured: 15.7% of adjacent pixels jump (see magnitude_checks)


@pytest.mark.parametrize("kind", ["uniform", "gaussian"])
def test_a_noise_png_is_refused(tmp_path, kind):
    path = noise_png(tmp_path / f"{kind}.png", kind)
    with pytest.raises(DataError, match=rf"{kind}\.png: looks like noise, not an MR magnitude image \(\d"):
        read_magnitude_volume(path)


def test_real_magnitudes_pass_the_phase_and_noise_check(tmp_path):
    coils = brain_coil_images()
    magnitudes = {
        "rss": np.sqrt((np.abs(coils) ** 2).sum(0))[None],
        **{f"coil{c}": np.abs(coils[c])[None] for c in range(4)},
    }
    for name, image in magnitudes.items():  # measured: 0.24-0.30% of adjacent pixels jump
        magnitude, _ = check_magnitude_array(image, tmp_path / f"{name}.npy")
        assert jump_fraction(magnitude) < MAX_JUMP_FRACTION / 10, name
    for path in (MR_SMALL, EPI_4D):  # measured: 0.31% and 0.42%
        assert jump_fraction(read_magnitude_volume(path, nifti_4d="all").magnitude) < MAX_JUMP_FRACTION / 5


def test_listing_groups_a_dicom_series_in_instance_order(tmp_path):
    raw = pydicom.dcmread(MR_SMALL).pixel_array
    uid = "1.2.826.0.1.3680043.2.1125.1"
    # File names run against the instance numbers: the series order must come from the header.
    for name, instance in (("a.dcm", 3), ("b.dcm", 2), ("c.dcm", 1)):
        edited_dicom(
            MR_SMALL,
            tmp_path / "series" / name,
            pixels=raw + instance,
            SeriesInstanceUID=uid,
            InstanceNumber=instance,
            SeriesNumber=7,
        )
    edited_dicom(MR_SMALL, tmp_path / "series" / "other.dcm")
    write_nifti(tmp_path / "nested" / "vol.nii.gz", np.ones((16, 16, 2), np.float32))
    (tmp_path / "README.txt").write_text("not an image")
    (tmp_path / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")
    files = list_magnitude_files(tmp_path)
    assert [f.name for f in files] == ["vol.nii.gz", "a.dcm", "b.dcm", "c.dcm", "other.dcm"]
    inputs, ignored = find_magnitude_inputs(tmp_path)
    assert ignored == [tmp_path / "README.txt"]
    names = [i.name for i in inputs]
    assert (
        names[0] == "nested__vol" and names[1] == "series__other" and names[2].startswith("series__series7-")
    )
    series = read_magnitude_input(inputs[2])
    assert [f.name for f in inputs[2].files] == ["c.dcm", "b.dcm", "a.dcm"]
    for k in range(3):
        np.testing.assert_array_equal(series.magnitude[k], raw + k + 1)
    one_each, _ = find_magnitude_inputs(tmp_path, group_dicom_series=False)
    assert len(one_each) == 5


def test_series_with_a_bad_member_names_that_file(tmp_path):
    uid = "1.2.826.0.1.3680043.2.1125.2"
    edited_dicom(MR_SMALL, tmp_path / "s1.dcm", SeriesInstanceUID=uid, InstanceNumber=1)
    odd = edited_dicom(
        MR_SMALL, tmp_path / "s2.dcm", pixels=np.ones((32, 32)), SeriesInstanceUID=uid, InstanceNumber=2
    )
    (item,), _ = find_magnitude_inputs(tmp_path)
    with pytest.raises(
        DataError, match=r"s2\.dcm: image of \(32, 32\) pixels differs from its series' \(64, 64\)"
    ):
        read_magnitude_input(item)
    assert odd in item.files


def test_empty_and_missing_directories(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="empty directory: no magnitude images"):
        list_magnitude_files(tmp_path)
    with pytest.raises(DataError, match="directory does not exist"):
        find_magnitude_inputs(tmp_path / "nope")


def test_input_format_sniffs_extensionless_dicom(tmp_path):
    edited_dicom(MR_SMALL, tmp_path / "IM0001")
    assert input_format(tmp_path / "IM0001") == "dicom" and input_format(REAL_DIR / EPI_4D.name) == "nifti"
    assert read_magnitude_input(MagnitudeInput("x", (tmp_path / "IM0001",), "dicom")).magnitude.shape == (
        1,
        64,
        64,
    )


def test_working_size_crops_to_a_square_fov_then_fourier_resizes():
    rng = np.random.default_rng(0)
    image = rng.random((2, 40, 30)).astype(np.float32) + 0.5
    same = to_working_size(image[:, 5:35, :], 30)
    np.testing.assert_array_equal(same.numpy(), image[:, 5:35, :])  # already square at the size: unchanged
    up = to_working_size(image, 60)
    assert up.shape == (2, 60, 60) and up.dtype == torch.float32 and (up >= 0).all()
    # Fourier upsampling by 2 keeps every original sample (even grid points) of the cropped FOV.
    np.testing.assert_allclose(up[:, ::2, ::2].numpy(), image[:, 5:35, :], rtol=1e-4, atol=1e-5)
    down = to_working_size(np.ones((1, 64, 48), np.float32) * 3.0, 16)
    np.testing.assert_allclose(down.numpy(), 3.0, rtol=1e-5)  # constant image keeps its value
