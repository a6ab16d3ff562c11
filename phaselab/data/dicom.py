"""Magnitude images from DICOM files (pydicom): single frames, multi-frame files, Siemens mosaics, series."""

from __future__ import annotations

import hashlib
import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from phaselab.data.errors import DataError

log = logging.getLogger(__name__)

# ImageType values that mark a phase, real or imaginary reconstruction (Siemens: 'P', 'R', 'I'; Philips and
# others spell them out). Training on those as if they were magnitudes would be silently wrong.
_NOT_MAGNITUDE = {"P", "PHASE", "R", "REAL", "I", "IMAGINARY", "PHASE MAP"}


def is_dicom_file(path: str | Path) -> bool:
    """True when the file starts with the DICOM preamble (128 bytes, then ``DICM``), whatever its name."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def _dcmread(path: Path, **kwargs: Any):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about benign header oddities of real scanners
            return pydicom.dcmread(path, **kwargs)
    except InvalidDicomError as err:
        raise DataError(path, "not a DICOM file (no 'DICM' preamble)") from err
    except Exception as err:  # truncated headers raise EOFError, OSError, ValueError, ...
        problem = f"unreadable DICOM (truncated or corrupt?): {type(err).__name__}: {err}"
        raise DataError(path, problem) from err


def patient_pseudonym(patient_id: str | None) -> str | None:
    """A stable pseudonym for a DICOM PatientID: keeps splits by patient possible without copying PHI."""
    if not patient_id or not str(patient_id).strip():
        return None
    return "p" + hashlib.sha256(str(patient_id).strip().encode()).hexdigest()[:12]


def _image_type(ds) -> list[str]:
    value = ds.get("ImageType")
    if value is None:
        return []
    return [
        str(v).upper()
        for v in (value if isinstance(value, Sequence) and not isinstance(value, str) else [value])
    ]


def _check_header(ds, path: Path) -> None:
    """Refuse what is not a grey-scale MR magnitude image, naming the header field that says so."""
    if "PixelData" not in ds:
        raise DataError(path, "DICOM file has no pixel data (truncated, or not an image: DICOMDIR, report?)")
    modality = ds.get("Modality")
    if modality is None:
        log.warning("%s: no Modality in the DICOM header; assuming MR", path)
    elif str(modality).upper() != "MR":
        raise DataError(path, f"Modality is {modality!r}, expected 'MR' (not an MR image)")
    samples = int(ds.get("SamplesPerPixel", 1))
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if samples != 1 or photometric != "MONOCHROME2":
        raise DataError(
            path,
            f"PhotometricInterpretation {photometric} with {samples} sample(s) per pixel; "
            "expected grey-scale MONOCHROME2",
        )
    flagged = _NOT_MAGNITUDE.intersection(_image_type(ds)[2:])
    if flagged:
        kind = sorted(flagged)[0]
        raise DataError(path, f"ImageType {_image_type(ds)} marks a {kind} image, not a magnitude")


def _mosaic_tiles(pixels: np.ndarray, ds, path: Path) -> np.ndarray:
    """Unpack a Siemens MOSAIC (slices tiled row-major on a ceil(sqrt(n)) grid) to (n, rows, cols)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nibabel.nicom warns that its DICOM *readers* are experimental
        from nibabel.nicom import csareader

    try:
        count = csareader.get_n_mosaic(csareader.get_csa_header(ds, "image"))
    except Exception as err:  # a damaged private header raises several types
        raise DataError(path, f"Siemens MOSAIC with an unreadable CSA header: {err}") from err
    if not count:
        raise DataError(path, "Siemens MOSAIC without NumberOfImagesInMosaic in its CSA header")
    grid = math.ceil(math.sqrt(count))
    rows, cols = pixels.shape
    if rows % grid or cols % grid:
        problem = f"Siemens MOSAIC of {count} slices ({grid}x{grid} grid) does not tile {rows}x{cols} pixels"
        raise DataError(path, problem)
    tiles = pixels.reshape(grid, rows // grid, grid, cols // grid).transpose(0, 2, 1, 3)
    return tiles.reshape(grid * grid, rows // grid, cols // grid)[:count]


def dicom_meta(ds) -> dict[str, Any]:
    """The header fields phaselab keeps (JSON-able): no names or dates, a pseudonym instead of PatientID."""
    meta = {
        "patient": patient_pseudonym(ds.get("PatientID")),
        "series_uid": str(ds.get("SeriesInstanceUID", "")) or None,
        "series_number": ds.get("SeriesNumber"),
        "series_description": str(ds.get("SeriesDescription", "")) or None,
        "image_type": _image_type(ds),
        "pixel_spacing": [float(v) for v in ds.get("PixelSpacing", [])] or None,
    }
    if meta["series_number"] is not None:
        meta["series_number"] = int(meta["series_number"])
    return meta


def read_dicom_pixels(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Pixel values of one DICOM file as (frames, rows, cols) float64, and its kept header fields.

    Values are the modality-LUT output (stored value * RescaleSlope + RescaleIntercept when present), in
    pydicom's row/column order. Multi-frame files give one slice per frame; a Siemens MOSAIC is unpacked
    into its slices (count from the CSA header). Checked: a readable DICOM with pixel data, Modality MR,
    grey-scale MONOCHROME2, ImageType not phase/real/imaginary.
    """
    from pydicom.pixels import apply_modality_lut

    path = Path(path)
    ds = _dcmread(path)
    _check_header(ds, path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = apply_modality_lut(ds.pixel_array, ds)
    except Exception as err:  # truncated pixel data, a transfer syntax without a decoder, ...
        raise DataError(path, f"cannot decode DICOM pixel data: {type(err).__name__}: {err}") from err
    pixels = np.asarray(pixels)
    if pixels.ndim == 2 and "MOSAIC" in _image_type(ds):
        pixels = _mosaic_tiles(pixels, ds, path)
    elif pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.ndim != 3:
        raise DataError(path, f"DICOM pixel array has shape {pixels.shape}, expected (rows, cols) or frames")
    meta = dicom_meta(ds)
    meta["mosaic"] = "MOSAIC" in _image_type(ds)
    return pixels, meta


class SeriesSlice(NamedTuple):
    """Where a single-slice file sits: its series and its place in it."""

    series_uid: str
    series_number: int | None
    instance_number: int


def series_slice(path: str | Path) -> SeriesSlice | None:
    """The series this single-slice file belongs to, or None to keep it alone (header only).

    Multi-frame files and mosaics are whole volumes already; files without a SeriesInstanceUID and
    unreadable headers stay alone, so that reading them reports their own problem.
    """
    try:
        ds = _dcmread(Path(path), stop_before_pixels=True)
    except DataError:
        return None
    if int(ds.get("NumberOfFrames", 1) or 1) > 1 or "MOSAIC" in _image_type(ds):
        return None
    uid = str(ds.get("SeriesInstanceUID", "")).strip()
    if not uid:
        return None
    number, instance = ds.get("SeriesNumber"), ds.get("InstanceNumber")
    series_number = int(number) if number not in (None, "") else None
    return SeriesSlice(uid, series_number, int(instance) if instance not in (None, "") else 0)


def read_dicom_series(paths: Sequence[str | Path]) -> tuple[np.ndarray, dict[str, Any]]:
    """Stack a series' files (already in slice order) into (slices, rows, cols); every file must read."""
    stacks, meta, shape = [], None, None
    for path in map(Path, paths):
        pixels, file_meta = read_dicom_pixels(path)
        if shape is None:
            shape, meta = pixels.shape[1:], file_meta
        elif pixels.shape[1:] != shape:
            raise DataError(path, f"image of {pixels.shape[1:]} pixels differs from its series' {shape}")
        stacks.append(pixels)
    if meta is None:
        raise ValueError("read_dicom_series needs at least one file")
    return np.concatenate(stacks), meta
