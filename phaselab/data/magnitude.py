"""Magnitude-only inputs (DICOM, NIfTI, .npy, PNG/TIFF): validated (S, H, W) volumes at the working size.

Conventions, per format (``MagnitudeVolume.magnitude`` is float32 ``(S, H, W)``, values as stored):

- DICOM: modality-LUT values (stored * RescaleSlope + RescaleIntercept) in pydicom's row/column order;
  multi-frame files give a slice per frame, Siemens mosaics are unpacked; single-slice files of one
  series (SeriesInstanceUID) are grouped into one volume, ordered by InstanceNumber.
- NIfTI (.nii, .nii.gz): ``scl_slope``/``scl_inter`` applied (nibabel); slices along the last spatial
  axis: slice k is ``data[:, :, k]`` (rows = the first voxel axis, no reorientation). 4-D series: the
  first volume (``nifti_4d="first"``, the default - fMRI/DWI repeats add slices, not anatomy) or all of
  them (``"all"``: slice ``t * Z + k`` is ``data[:, :, k, t]``). Trailing singleton dims are dropped.
- .npy: (H, W) or (S, H, W), slices along the first axis (phaselab's own layout).
- PNG/TIFF (Pillow): grey-scale (8/16-bit or float) pages; RGB only if its channels are equal. These are
  display exports (windowed, often 8-bit): a last resort.

Every volume is checked: real, finite, non-negative, not empty, not all zero, at least 8x8 pixels, and
not a phase map or noise (``magnitude_checks``: too many large jumps between neighbouring pixels).
All-zero slices (padding) are dropped; ``meta["source_slices"]`` lists the slices kept.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from phaselab.data import dicom
from phaselab.data.errors import DataError
from phaselab.data.magnitude_checks import check_looks_like_magnitude
from phaselab.mri.geometry import center_crop, fourier_resize

FORMATS = {
    ".dcm": "dicom",
    ".ima": "dicom",
    ".nii": "nifti",
    ".nii.gz": "nifti",
    ".npy": "npy",
    ".png": "png",
    ".tif": "tiff",
    ".tiff": "tiff",
}
MIN_SIZE = 8


@dataclass
class MagnitudeVolume:
    """One magnitude-only volume: ``magnitude`` float32 (S, H, W), finite, >= 0, no all-zero slice."""

    name: str
    magnitude: np.ndarray
    source_format: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MagnitudeInput:
    """What becomes one output volume: a file, or the files of one DICOM series in slice order."""

    name: str
    files: tuple[Path, ...]
    source_format: str


def input_format(path: str | Path) -> str:
    """'dicom', 'nifti', 'npy', 'png' or 'tiff' from the name (extension-less DICOMs by their preamble)."""
    path = Path(path)
    name = path.name.lower()
    suffix = ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    if not suffix and dicom.is_dicom_file(path):
        return "dicom"
    raise DataError(
        path,
        f"unsupported file type {suffix or '(no extension)'!r}; supported: "
        f"{', '.join(sorted(FORMATS))} and extension-less DICOM",
    )


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else path.stem


def check_magnitude_array(values: Any, path: str | Path) -> tuple[np.ndarray, list[int]]:
    """Validate (S, H, W) magnitudes; returns float32 values without all-zero slices, and the slices kept.

    DataError naming ``path`` on values that are not a magnitude image (complex, negative, NaN, ...) or
    that look like a wrapped phase map or noise (:func:`check_looks_like_magnitude`)."""
    path = Path(path)
    values = np.asarray(values)
    if np.iscomplexobj(values):
        raise DataError(path, f"complex values (dtype {values.dtype}); expected a magnitude image")
    if values.dtype.kind not in "fiu":
        raise DataError(path, f"dtype {values.dtype} is not a real numeric image")
    if values.size == 0:
        raise DataError(path, f"empty image (shape {values.shape})")
    if values.ndim != 3:
        raise DataError(path, f"image has {values.ndim} dims {values.shape}, expected (slices, H, W)")
    if min(values.shape[1:]) < MIN_SIZE:
        raise DataError(path, f"slices of {values.shape[1:]} pixels; expected at least {MIN_SIZE}x{MIN_SIZE}")
    with np.errstate(over="ignore"):  # overflow to inf is reported just below
        values = values.astype(np.float32)
    finite = np.isfinite(values)
    if not finite.all():
        num_nan = int(np.isnan(values).sum())
        raise DataError(
            path,
            f"holds {num_nan} NaN and {int((~finite).sum()) - num_nan} inf values "
            f"(of {values.size}, after conversion to float32)",
        )
    if (values < 0).any():
        raise DataError(
            path,
            f"holds {int((values < 0).sum())} negative values (min {values.min():g}); "
            "a magnitude image is >= 0 (is this a phase, real or imaginary image?)",
        )
    nonzero = values.reshape(values.shape[0], -1).any(axis=1)
    if not nonzero.any():
        raise DataError(path, f"all-zero image (shape {values.shape})")
    kept = np.flatnonzero(nonzero).tolist()
    values = values[nonzero]
    check_looks_like_magnitude(values, path)
    return values, kept


def _read_nifti(path: Path, nifti_4d: str) -> np.ndarray:
    import nibabel as nib

    try:
        img = nib.load(path)
        dtype = img.get_data_dtype()
    except Exception as err:  # nibabel raises ImageFileError, EOFError, zlib.error, ...
        raise DataError(path, f"not a readable NIfTI file: {type(err).__name__}: {err}") from err
    if dtype.kind == "c":
        raise DataError(path, f"complex values (dtype {dtype}); expected a magnitude image")
    if dtype.kind not in "fiu":
        raise DataError(path, f"dtype {dtype} is not a real numeric image (RGB?)")
    shape = list(img.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape.pop()
    if len(shape) not in (2, 3, 4):
        raise DataError(path, f"NIfTI of {len(img.shape)} dims {img.shape}; expected 2-D, 3-D or 4-D")
    try:
        if len(shape) == 4 and nifti_4d == "first":
            data = np.asarray(img.dataobj[..., 0]).reshape(shape[:3])
        else:
            data = np.asarray(img.dataobj).reshape(shape)
    except Exception as err:  # a truncated .nii.gz fails only when its data are read
        problem = f"NIfTI data unreadable (truncated or corrupt?): {type(err).__name__}: {err}"
        raise DataError(path, problem) from err
    if data.ndim == 2:
        return data[None]
    if data.ndim == 3:
        return np.moveaxis(data, 2, 0)
    x, y, z, t = data.shape
    return data.transpose(3, 2, 0, 1).reshape(t * z, x, y)


def _read_npy(path: Path) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as err:  # ValueError (pickled/corrupt header), EOFError, OSError
        raise DataError(path, f"not a readable .npy array: {type(err).__name__}: {err}") from err
    if not isinstance(data, np.ndarray):
        raise DataError(path, "expected one array in .npy format")
    return data[None] if data.ndim == 2 else data


def _read_picture(path: Path) -> np.ndarray:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    pages = []
    try:
        with Image.open(path) as img:
            for page in ImageSequence.Iterator(img):
                pixels = np.asarray(page)
                if page.mode in ("RGB", "RGBA"):
                    if not (
                        np.array_equal(pixels[..., 0], pixels[..., 1])
                        and np.array_equal(pixels[..., 0], pixels[..., 2])
                    ):
                        raise DataError(path, f"colour {page.mode} image; expected grey-scale")
                    pixels = pixels[..., 0]
                elif page.mode not in ("L", "I", "F") and not page.mode.startswith("I;16"):
                    raise DataError(path, f"image mode {page.mode!r}; expected grey-scale (L, I;16, I or F)")
                pages.append(pixels)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(path, f"not a readable image: {type(err).__name__}: {err}") from err
    if len({p.shape for p in pages}) > 1:
        raise DataError(path, f"pages differ in shape: {sorted({p.shape for p in pages})}")
    return np.stack(pages)


def read_magnitude_volume(path: str | Path, *, nifti_4d: str = "first") -> MagnitudeVolume:
    """Read and validate one magnitude file (any supported format) at its native size."""
    return read_magnitude_input(
        MagnitudeInput(_stem(Path(path)), (Path(path),), input_format(path)), nifti_4d=nifti_4d
    )


def read_magnitude_input(item: MagnitudeInput, *, nifti_4d: str = "first") -> MagnitudeVolume:
    """Read and validate a file or a DICOM series; every problem raises DataError naming the file."""
    if nifti_4d not in ("first", "all"):
        raise ValueError(f"nifti_4d must be 'first' or 'all', got {nifti_4d!r}")
    path = item.files[0]
    if not path.exists():
        raise DataError(path, "file does not exist")
    if path.is_dir():
        raise DataError(path, "is a directory, expected an image file")
    meta: dict[str, Any] = {"files": [str(p) for p in item.files]}
    if item.source_format == "dicom":
        values, header = dicom.read_dicom_series(item.files)
        meta.update(header)
    elif item.source_format == "nifti":
        values = _read_nifti(path, nifti_4d)
    elif item.source_format == "npy":
        values = _read_npy(path)
    elif item.source_format in ("png", "tiff"):
        values = _read_picture(path)
    else:
        raise DataError(path, f"unsupported format {item.source_format!r}")
    meta["input_shape"] = list(np.shape(values))
    # A series' problem is reported against its first file when no single file is to blame.
    magnitude, kept = check_magnitude_array(values, path)
    meta["source_slices"] = kept
    return MagnitudeVolume(item.name, magnitude, item.source_format, meta)


def _walk(directory: Path) -> tuple[list[Path], list[Path]]:
    """Supported files and ignored files (other types), recursively, skipping hidden entries and DICOMDIRs."""
    found, ignored = [], []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if name.startswith(".") or name.upper() == "DICOMDIR":
                continue
            try:
                input_format(path)
                found.append(path)
            except DataError:
                ignored.append(path)
    return found, ignored


def _check_directory(directory: Path) -> None:
    if not directory.exists():
        raise DataError(directory, "directory does not exist")
    if not directory.is_dir():
        raise DataError(directory, "not a directory")


def list_magnitude_files(directory: str | Path) -> list[Path]:
    """Supported magnitude files under ``directory`` (recursive, sorted); DataError if there are none."""
    directory = Path(directory)
    _check_directory(directory)
    files, _ = _walk(directory)
    if not files:
        raise DataError(directory, f"empty directory: no magnitude images ({', '.join(sorted(FORMATS))})")
    return files


def _unique_names(items: list[tuple[str, tuple[Path, ...], str]]) -> list[MagnitudeInput]:
    counts = defaultdict(int)
    for name, _, _ in items:
        counts[name] += 1
    inputs = []
    for name, files, fmt in items:
        if counts[name] > 1:  # e.g. scan.nii beside scan.nii.gz: keep the extension in the name
            name = f"{name}_{files[0].name[len(_stem(files[0])) :].lstrip('.').replace('.', '_')}"
        inputs.append(MagnitudeInput(name, files, fmt))
    if len({i.name for i in inputs}) != len(inputs):
        raise DataError(items[0][1][0].parent, "input names collide after disambiguation")
    return inputs


def find_magnitude_inputs(
    directory: str | Path, *, group_dicom_series: bool = True
) -> tuple[list[MagnitudeInput], list[Path]]:
    """The volumes to synthesize under ``directory`` and the files ignored (unsupported types).

    A volume's name is its path relative to ``directory`` without extension, '/' replaced by '__'.
    Single-slice DICOMs sharing a SeriesInstanceUID become one volume (ordered by InstanceNumber, then
    file name) named ``<folder>__series<SeriesNumber>-<uid hash>``; ``group_dicom_series=False`` keeps
    one volume per file.
    """
    directory = Path(directory)
    _check_directory(directory)
    files, ignored = _walk(directory)
    if not files:
        raise DataError(directory, f"empty directory: no magnitude images ({', '.join(sorted(FORMATS))})")

    def relative_name(path: Path) -> str:
        rel = path.relative_to(directory)
        return "__".join([*rel.parts[:-1], _stem(rel)])

    items: list[tuple[str, tuple[Path, ...], str]] = []
    series: dict[str, list[tuple[dicom.SeriesSlice, Path]]] = defaultdict(list)
    for path in files:
        fmt = input_format(path)
        place = dicom.series_slice(path) if fmt == "dicom" and group_dicom_series else None
        if place is None:
            items.append((relative_name(path), (path,), fmt))
        else:
            series[place.series_uid].append((place, path))
    for uid, members in series.items():
        if len(members) == 1:
            items.append((relative_name(members[0][1]), (members[0][1],), "dicom"))
            continue
        members.sort(key=lambda m: (m[0].instance_number, m[1].name))
        first, path = members[0]
        number = "" if first.series_number is None else first.series_number
        tag = f"series{number}-{hashlib.sha256(uid.encode()).hexdigest()[:6]}"
        folder = path.parent.relative_to(directory)
        items.append(("__".join([*folder.parts, tag]), tuple(p for _, p in members), "dicom"))
    items.sort(key=lambda item: item[0])
    return _unique_names(items), ignored


def to_working_size(magnitude: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """Magnitudes (S, H, W) -> float32 (S, size, size): centre-crop to a square field of view (the shorter
    side), then resample the image as a zero-phase complex image by cropping / zero-padding its centred
    k-space (:func:`fourier_resize`, pixel values kept), and take the modulus. The modulus turns the small
    negative Gibbs ripples of a resampled sharp edge into small positive ones, so the result is a valid
    magnitude; an image already ``size`` x ``size`` is returned unchanged.
    """
    values = torch.as_tensor(np.asarray(magnitude), dtype=torch.float32)
    side = min(values.shape[-2:])
    values = center_crop(values, (side, side))
    if side == size:
        return values.contiguous()
    return fourier_resize(values.to(torch.complex64), size).abs().float().contiguous()
