"""fastMRI HDF5 volumes: validated reading, atomic writing, phaselab extras (datasets and attrs)."""

import json
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from phaselab.data.errors import DataError
from phaselab.data.ismrmrd import minimal_header, parse_header

TARGET_KEYS = ("reconstruction_esc", "reconstruction_rss")
RESERVED_DATASETS = ("kspace", "ismrmrd_header", *TARGET_KEYS)
ATTR_PREFIX = "phaselab_"
# Names of attrs stored as JSON strings (dicts, lists, None), so that reading can decode exactly those.
_JSON_ATTRS = "phaselab_json_attrs"
_UNREADABLE = "not a readable HDF5 file (truncated or corrupt?)"


@dataclass
class Volume:
    """One fastMRI volume; ``kspace`` is complex64 ``(S, H, W)`` or ``(S, C, H, W)``."""

    path: Path
    kspace: np.ndarray
    target: np.ndarray | None = None
    target_key: str | None = None
    attrs: dict = field(default_factory=dict)
    header: str = ""
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def is_multicoil(self) -> bool:
        return self.kspace.ndim == 4

    @property
    def num_slices(self) -> int:
        return int(self.kspace.shape[0])

    @property
    def patient_id(self) -> str | None:
        return self.attrs.get("patient_id")


@dataclass
class VolumeSlice:
    """One slice of a volume: ``kspace`` is ``(H, W)`` or ``(C, H, W)``; ``target`` ``(h, w)``."""

    path: Path
    index: int
    kspace: np.ndarray
    target: np.ndarray | None
    target_key: str | None
    attrs: dict
    extras: dict[str, np.ndarray] = field(default_factory=dict)


@contextmanager
def _open(path: Path) -> Iterator[h5py.File]:
    """Open read-only; any HDF5-level failure (also mid-read) becomes a DataError naming the file."""
    if not path.exists():
        raise DataError(path, "file does not exist")
    if path.is_dir():
        raise DataError(path, "is a directory, expected an HDF5 file")
    try:
        hf = h5py.File(path, "r")
    except OSError as err:
        raise DataError(path, _UNREADABLE) from err
    try:
        with hf:
            yield hf
    except OSError as err:
        raise DataError(path, f"{_UNREADABLE}: {err}") from err


def _kspace_dataset(hf: h5py.File, path: Path) -> h5py.Dataset:
    if "kspace" not in hf:
        raise DataError(path, "dataset 'kspace' missing")
    ds = hf["kspace"]
    if not isinstance(ds, h5py.Dataset):
        raise DataError(path, "'kspace' is a group, expected a dataset")
    if ds.dtype.kind != "c":
        raise DataError(path, f"dataset 'kspace' has dtype {ds.dtype}, expected complex (complex64)")
    if ds.ndim not in (3, 4):
        raise DataError(
            path,
            f"dataset 'kspace' has {ds.ndim} dims {ds.shape}, expected 3 (slices, H, W) for "
            "single-coil or 4 (slices, coils, H, W) for multi-coil",
        )
    if ds.size == 0:
        raise DataError(path, f"dataset 'kspace' is empty (shape {ds.shape})")
    return ds


def _check_finite(values: np.ndarray, path: Path, what: str) -> None:
    finite = np.isfinite(values)
    if finite.all():
        return
    num_nan = int(np.isnan(values).sum())
    num_inf = int((~finite).sum()) - num_nan
    raise DataError(path, f"{what} holds {num_nan} NaN and {num_inf} inf values (of {values.size})")


def _target_dataset(hf: h5py.File, path: Path, kspace_shape: tuple) -> h5py.Dataset | None:
    # Single-coil fastMRI files carry both targets; prefer the one matching the challenge.
    preferred = TARGET_KEYS if len(kspace_shape) == 3 else TARGET_KEYS[::-1]
    key = next((k for k in preferred if k in hf), None)
    if key is None:
        return None
    ds = hf[key]
    if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "fiu":
        raise DataError(path, f"dataset '{key}' must be a real array, got {getattr(ds, 'dtype', 'a group')}")
    if ds.ndim != 3 or ds.shape[0] != kspace_shape[0]:
        raise DataError(
            path,
            f"dataset '{key}' has shape {ds.shape}, inconsistent with {kspace_shape[0]} k-space slices "
            "(expected (slices, h, w))",
        )
    return ds


def _header(hf: h5py.File, path: Path) -> str:
    """The ISMRMRD header text, '' when absent (phaselab does not need it; fastMRI's loader does)."""
    if "ismrmrd_header" not in hf:
        return ""
    raw = hf["ismrmrd_header"][()]
    header = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    try:
        parse_header(header)
    except ValueError as err:
        raise DataError(path, f"dataset 'ismrmrd_header' invalid: {err}") from err
    return header


def _decode_attrs(raw: Mapping[str, Any]) -> dict:
    json_keys = set(json.loads(raw[_JSON_ATTRS])) if _JSON_ATTRS in raw else set()
    attrs = {}
    for key, value in raw.items():
        if key == _JSON_ATTRS:
            continue
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        elif isinstance(value, np.generic):
            value = value.item()
        attrs[key] = json.loads(value) if key in json_keys else value
    return attrs


def read_attrs(path: str | Path) -> dict:
    """File attrs only (cheap): ``patient_id``, ``acquisition``, ``max``, ``norm``, ``phaselab_*``."""
    path = Path(path)
    with _open(path) as hf:
        return _decode_attrs(hf.attrs)


def read_volume(path: str | Path, *, load_target: bool = True, load_extras: bool = True) -> Volume:
    """Read and validate a fastMRI volume; every problem raises ``DataError`` naming the file.

    Checked: readable HDF5, 'kspace' present, complex, 3 or 4 dims, non-empty, finite; target real,
    (slices, h, w) with the k-space slice count, finite; header parses when present. Extras are all
    other top-level datasets (phaselab's e.g. 'phaselab_phase', fastMRI's 'mask').
    """
    path = Path(path)
    with _open(path) as hf:
        ds = _kspace_dataset(hf, path)
        kspace = ds[()].astype(np.complex64, copy=False)
        _check_finite(kspace, path, "k-space")
        target_ds = _target_dataset(hf, path, ds.shape)
        target, target_key = None, None
        if target_ds is not None and load_target:
            target, target_key = target_ds[()], target_ds.name.lstrip("/")
            _check_finite(target, path, f"dataset '{target_key}'")
        extras = {}
        if load_extras:
            for name, item in hf.items():
                if name not in RESERVED_DATASETS and isinstance(item, h5py.Dataset):
                    extras[name] = item[()]
        return Volume(
            path=path,
            kspace=kspace,
            target=target,
            target_key=target_key,
            attrs=_decode_attrs(hf.attrs),
            header=_header(hf, path),
            extras=extras,
        )


def read_slice(
    path: str | Path, index: int, *, load_target: bool = True, extras: tuple[str, ...] = ()
) -> VolumeSlice:
    """Read one slice without loading the volume; ``extras`` names datasets to slice the same way."""
    path = Path(path)
    with _open(path) as hf:
        ds = _kspace_dataset(hf, path)
        num_slices = ds.shape[0]
        if not -num_slices <= index < num_slices:
            raise IndexError(f"{path}: slice {index} out of range for {num_slices} slices")
        kspace = ds[index].astype(np.complex64, copy=False)
        _check_finite(kspace, path, f"k-space slice {index}")
        target_ds = _target_dataset(hf, path, ds.shape)
        target, target_key = None, None
        if target_ds is not None and load_target:
            target, target_key = target_ds[index], target_ds.name.lstrip("/")
        sliced = {}
        for name in extras:
            if name not in hf:
                raise DataError(path, f"dataset '{name}' missing")
            sliced[name] = hf[name][index]
        return VolumeSlice(path, index, kspace, target, target_key, _decode_attrs(hf.attrs), sliced)


def list_volumes(directory: str | Path) -> list[Path]:
    """Sorted ``*.h5`` files of a directory; DataError if it is missing or holds none."""
    directory = Path(directory)
    if not directory.exists():
        raise DataError(directory, "directory does not exist")
    if not directory.is_dir():
        raise DataError(directory, "not a directory")
    files = sorted(p for p in directory.glob("*.h5") if p.is_file())
    if not files:
        raise DataError(directory, "empty directory: no .h5 files")
    return files


def _as_numpy(array: Any) -> np.ndarray:
    if hasattr(array, "detach"):  # torch tensor, without importing torch here
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def _encode_attrs(extra_attrs: Mapping[str, Any]) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    json_keys = []
    for key, value in extra_attrs.items():
        name = key if key.startswith(ATTR_PREFIX) else ATTR_PREFIX + key
        if name in encoded or name == _JSON_ATTRS:
            raise ValueError(f"extra attr {key!r} collides with another attr named {name!r}")
        if value is None or isinstance(value, dict | list | tuple):
            encoded[name] = json.dumps(value)
            json_keys.append(name)
        elif isinstance(value, Path):
            encoded[name] = str(value)
        else:
            encoded[name] = value
    if json_keys:
        encoded[_JSON_ATTRS] = json.dumps(json_keys)
    return encoded


def _validated_inputs(kspace: Any, target: Any, target_key: str | None) -> tuple:
    kspace = _as_numpy(kspace)
    if not np.iscomplexobj(kspace):
        raise ValueError(f"kspace must be complex, got dtype {kspace.dtype}")
    if kspace.ndim not in (3, 4) or kspace.size == 0:
        raise ValueError(f"kspace must be non-empty (S, H, W) or (S, C, H, W), got shape {kspace.shape}")
    kspace = kspace.astype(np.complex64, copy=False)
    if not np.isfinite(kspace).all():
        raise ValueError("kspace holds NaN or inf values")
    if target_key is None:
        target_key = TARGET_KEYS[0] if kspace.ndim == 3 else TARGET_KEYS[1]
    if target_key not in TARGET_KEYS:
        raise ValueError(f"target_key must be one of {TARGET_KEYS}, got {target_key!r}")
    if target is not None:
        target = _as_numpy(target)
        if np.iscomplexobj(target) or target.ndim != 3 or target.shape[0] != kspace.shape[0]:
            raise ValueError(
                f"target must be real (slices, h, w) with {kspace.shape[0]} slices, "
                f"got {target.dtype} {target.shape}"
            )
        target = target.astype(np.float32, copy=False)
    return kspace, target, target_key


def write_volume(
    path: str | Path,
    kspace: Any,
    *,
    patient_id: str,
    acquisition: str = "CORPD_FBK",
    target: Any = None,
    target_key: str | None = None,
    extras: Mapping[str, Any] | None = None,
    extra_attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write a fastMRI-format volume atomically (temp file in the same folder, then ``os.replace``).

    ``kspace`` complex (S, H, W) or (S, C, H, W), numpy or torch, stored as complex64. ``target``
    (S, h, w) is stored as float32 under ``target_key`` (default reconstruction_esc for single-coil,
    reconstruction_rss for multi-coil) and sets attrs ``max``/``norm`` as fastMRI does (volume max
    and L2 norm); without a target those attrs are omitted. ``extras`` become datasets;
    ``extra_attrs`` become ``phaselab_<key>`` attrs (dicts, lists, tuples and None stored as JSON,
    read back as dicts/lists/None). The ISMRMRD header records the k-space and target sizes.
    """
    path = Path(path)
    kspace, target, target_key = _validated_inputs(kspace, target, target_key)
    extras = {name: _as_numpy(value) for name, value in (extras or {}).items()}
    for name in extras:
        if name in RESERVED_DATASETS or not name or "/" in name:
            raise ValueError(f"extra dataset name {name!r} is reserved or invalid")
    attrs: dict[str, Any] = {"acquisition": acquisition, "patient_id": str(patient_id)}
    if target is not None:
        attrs["max"] = float(target.max())
        attrs["norm"] = float(np.linalg.norm(target))
    attrs.update(_encode_attrs(extra_attrs or {}))
    recon = target.shape[-2:] if target is not None else kspace.shape[-2:]
    header = minimal_header(encoded=kspace.shape[-2:], recon=recon)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with h5py.File(tmp, "w") as hf:
            hf.create_dataset("ismrmrd_header", data=header)
            hf.create_dataset("kspace", data=kspace)
            if target is not None:
                hf.create_dataset(target_key, data=target)
            for name, value in extras.items():
                hf.create_dataset(name, data=value)
            for key, value in attrs.items():
                hf.attrs[key] = value
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
