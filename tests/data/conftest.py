"""Shared builders for the data-layer tests: small random complex volumes and hand-made bad files."""

import h5py
import numpy as np
import pytest


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
