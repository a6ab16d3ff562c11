"""Builders for magnitude-only test inputs: edited copies of the real DICOMs, NIfTIs, bad files."""

import shutil
from pathlib import Path

import numpy as np

REAL_DIR = Path(__file__).parent / "magnitude_only"
MR_SMALL = REAL_DIR / "pydicom_MR_small.dcm"  # 64x64 int16, real MR pixels
SIEMENS_MOSAIC = REAL_DIR / "nibabel_0.dcm"  # real mosaic header, synthetic ramp pixels (see PROVENANCE)
EPI_4D = REAL_DIR / "nibabel_example4d.nii.gz"  # (128, 96, 24, 2) int16 EPI magnitudes
# (256, 256, 4) complex128 real coil images of a brain (see gpunufft_brain4ch/PROVENANCE.txt)
BRAIN_4CH = Path(__file__).parent / "gpunufft_brain4ch" / "img_brain_4ch.mat"


def edited_dicom(src: Path, dst: Path, pixels: np.ndarray | None = None, **fields) -> Path:
    """A copy of ``src`` with header ``fields`` replaced (None deletes one) and optionally new pixels."""
    import pydicom

    ds = pydicom.dcmread(src)
    for name, value in fields.items():
        if value is None:
            delattr(ds, name)
        else:
            setattr(ds, name, value)
    if pixels is not None:
        pixels = np.asarray(pixels, dtype=ds.pixel_array.dtype)
        ds.Rows, ds.Columns = pixels.shape
        ds.PixelData = pixels.tobytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dst)
    return dst


def write_nifti(path: Path, data: np.ndarray) -> Path:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    return path


def real_archive(folder: Path) -> Path:
    """The two real files with real pixels (the mosaic's pixels are a ramp that cannot be unpacked)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(MR_SMALL, folder)
    shutil.copy(EPI_4D, folder)
    return folder


def bad_files(folder: Path) -> dict[str, str]:
    """Write one bad file per kind of problem; returns {file name: expected words of its DataError}."""
    folder.mkdir(parents=True, exist_ok=True)
    # Header intact, pixel data cut; its own series (a bad member would make its whole series bad).
    cut = edited_dicom(MR_SMALL, folder / "cut.dcm", SeriesInstanceUID="1.2.826.0.1.3680043.2.1125.9")
    cut.write_bytes(cut.read_bytes()[:6000])
    (folder / "notes.dcm").write_text("this is a text file, not DICOM\n" * 10)
    nan = np.ones((16, 16, 3), np.float32)
    nan[4, 5, 1] = np.nan
    write_nifti(folder / "nan.nii.gz", nan)
    np.save(folder / "blank.npy", np.zeros((2, 16, 16), np.float32))
    return {
        "cut.dcm": "cannot decode DICOM pixel data",
        "notes.dcm": "not a DICOM file",
        "nan.nii.gz": "1 NaN and 0 inf",
        "blank.npy": "all-zero image",
    }


def brain_coil_images() -> np.ndarray:
    """The real brain coil images, (4, 256, 256) complex128."""
    import scipy.io

    return np.moveaxis(scipy.io.loadmat(BRAIN_4CH)["img"], 2, 0)


def phase_nifti(path: Path, coil: int = 0) -> Path:
    """A real coil's phase rescaled to 0..4095 (as a 12-bit scanner stores it), as a float32 NIfTI: the
    values of a magnitude (finite, >= 0), the look of a phase map (wraps, a noise background)."""
    phase = np.angle(brain_coil_images()[coil])
    stored = np.round((phase + np.pi) / (2 * np.pi) * 4095).astype(np.float32)
    return write_nifti(path, stored[:, :, None])


def noise_png(path: Path, kind: str = "uniform", seed: int = 0) -> Path:
    """An 8-bit grey-scale noise PNG (Pillow): uniform 0..255 or Gaussian 128 +- 40."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    if kind == "uniform":
        pixels = rng.integers(0, 256, (64, 64))
    else:
        pixels = np.clip(np.round(128 + 40 * rng.standard_normal((64, 64))), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path
