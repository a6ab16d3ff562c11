"""Phantom datasets on disk: one fastMRI single-coil file per patient, reused when the settings match."""

from pathlib import Path

import numpy as np

from phaselab.data.errors import DataError
from phaselab.data.fastmri_io import read_attrs, write_volume
from phaselab.data.phantoms.volumes import _check, make_phantom_volume

PHANTOM_VERSION = 1


def phantom_path(out_dir: str | Path, kind: str, patient_index: int) -> Path:
    return Path(out_dir) / f"phantom_{kind}_p{patient_index:03d}.h5"


def _up_to_date(path: Path, wanted: dict) -> bool:
    if not path.is_file():
        return False
    try:
        attrs = read_attrs(path)
    except (OSError, ValueError):  # unreadable or partial file: regenerate it
        return False
    return all(attrs.get(f"phaselab_{key}") == value for key, value in wanted.items())


SETTINGS = ("kind", "size", "slices", "seed", "noise", "version")


def _refuse_other_settings(
    out_dir: Path, kind: str, size: int, slices: int, seed: int, noise: float, patients: int
) -> None:
    """A folder holds one phantom dataset: phantoms of other settings (or more patients) in it would mix
    into every later read of the folder, so they are refused before anything is written."""
    if not out_dir.is_dir():
        return
    wanted = {"kind": kind, "size": size, "slices": slices, "seed": seed, "noise": noise}
    wanted["version"] = PHANTOM_VERSION
    others, differ = [], set()
    for path in sorted(out_dir.glob("phantom_*.h5")):
        try:
            attrs = read_attrs(path)
        except (OSError, ValueError):
            continue  # a partial file of a killed run: rewritten below if it is one of ours
        found = {key: attrs.get(f"phaselab_{key}") for key in SETTINGS}
        extra = int(attrs.get("phaselab_patient_index", -1)) >= patients
        if found != wanted or extra:
            others.append(path)
            differ |= {key for key in SETTINGS if found[key] != wanted[key]} or {"patients"}
    if others:
        details = ", ".join(
            f"{key} {attrs.get(f'phaselab_{key}')}" for key in sorted(differ) if key != "patients"
        )
        raise DataError(
            out_dir,
            f"holds {len(others)} phantom file(s) made with other settings ({', '.join(sorted(differ))} "
            f"differ{'; e.g. ' + details if details else ''}); use another --out or delete them",
        )


def write_phantom_dataset(
    out_dir: str | Path,
    *,
    patients: int,
    slices: int,
    size: int,
    kind: str = "knee",
    seed: int = 0,
    noise: float | None = None,
) -> list[Path]:
    """Write one fastMRI single-coil file per patient (``phantom_<kind>_p<NNN>.h5``); returns the paths.

    Target ``reconstruction_esc`` = |image|; extras ``phaselab_labels`` (uint8 tissue labels) and
    ``phaselab_clean_phase`` (noise-free phase). Files that exist with the same generator settings
    are kept, so reruns are cheap.
    """
    noise = _check(kind, size, slices, noise)
    if patients < 1 or seed < 0:
        raise ValueError(f"patients must be >= 1 and seed >= 0, got {patients}, {seed}")
    _refuse_other_settings(Path(out_dir), kind, size, slices, seed, float(noise), patients)
    paths = []
    for index in range(patients):
        path = phantom_path(out_dir, kind, index)
        wanted = {
            "source": "phantom", "kind": kind, "seed": seed, "size": size, "slices": slices,
            "noise": float(noise), "patient_index": index, "version": PHANTOM_VERSION,
        }  # fmt: skip
        if not _up_to_date(path, wanted):
            volume = make_phantom_volume(kind, size, slices, seed, index, noise)
            write_volume(
                path,
                volume.kspace,
                patient_id=f"phantom-{kind}-{index:03d}",
                acquisition="CORPD_FBK" if kind == "knee" else "AXT2",
                target=np.abs(volume.image),
                extras={"phaselab_labels": volume.labels, "phaselab_clean_phase": volume.phase},
                extra_attrs=wanted,
            )
        paths.append(path)
    return paths
