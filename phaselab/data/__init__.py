"""Data layer: fastMRI HDF5 I/O and checks, magnitude-only inputs, phantoms, coil compression, splits."""

from phaselab.data.errors import DataError
from phaselab.data.fastmri_io import Volume, VolumeSlice, list_volumes, read_slice, read_volume, write_volume

__all__ = ["DataError", "Volume", "VolumeSlice", "list_volumes", "read_slice", "read_volume", "write_volume"]
