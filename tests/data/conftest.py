"""Shared builders for the data-layer tests: small random complex volumes and hand-made bad files."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from phaselab.data.fastmri_io import write_volume


def random_kspace(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def write_raw(path, **datasets) -> None:
    """An HDF5 file with exactly the given datasets (no validation): for building bad inputs."""
    with h5py.File(path, "w") as hf:
        for name, value in datasets.items():
            hf.create_dataset(name, data=value)
        hf.attrs["patient_id"] = path.stem


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def make_mixed_dir(folder: Path) -> Path:
    """Two good volumes and four bad ones, each bad in a different way (see MIXED_DIR_PROBLEMS)."""
    write_volume(folder / "good1.h5", random_kspace((2, 8, 8)), patient_id="p1")
    write_volume(folder / "good2.h5", random_kspace((2, 2, 8, 8)), patient_id="p2")
    write_raw(folder / "no_kspace.h5", reconstruction_esc=np.ones((1, 4, 4)))
    write_raw(folder / "flat.h5", kspace=random_kspace((8, 8)))
    nan = random_kspace((2, 4, 4))
    nan[1, 1, 1] = np.nan
    write_raw(folder / "nan.h5", kspace=nan)
    cut = write_volume(folder / "cut.h5", random_kspace((4, 32, 32)), patient_id="p3")
    cut.write_bytes(cut.read_bytes()[:3000])
    (folder / "README.txt").write_text("ignored: not .h5")
    return folder


MIXED_DIR_PROBLEMS = {
    "cut.h5": "truncated or corrupt",
    "flat.h5": "has 2 dims",
    "nan.h5": "1 NaN and 0 inf",
    "no_kspace.h5": "dataset 'kspace' missing",
}


@pytest.fixture
def mixed_dir(tmp_path) -> Path:
    return make_mixed_dir(tmp_path / "mixed")
