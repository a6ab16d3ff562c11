"""Single-coil fastMRI files read one slice at a time: a (file, slice) index whose HDF5 files each process
opens itself, on first use, so a long-lived worker holds no dataset in memory."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from phaselab.data.errors import DataError
from phaselab.data.fastmri_io import _check_finite, _kspace_dataset, _open, _target_dataset

# Open files kept per process: random batches touch every file, but the file-descriptor limit is often 1024.
MAX_OPEN_FILES = 64


class SliceFiles:
    """Slices of single-coil fastMRI files in file order; ``read(i)`` reads slice ``i``'s k-space and target.

    Construction checks every file's k-space (complex, (S, H, W)) and target (same shape) without reading
    them; each read checks its slice is finite. Pickles without its open files (they reopen in the new
    process).
    """

    def __init__(self, paths: list[str | Path] | tuple[str | Path, ...]):
        self.paths = tuple(Path(p) for p in paths)
        counts, shape = [], None
        for path in self.paths:
            with _open(path) as hf:
                ds = _kspace_dataset(hf, path)
                if ds.ndim != 3:
                    raise DataError(path, f"k-space has shape {ds.shape}, expected single-coil (S, H, W)")
                target = _target_dataset(hf, path, ds.shape)
                if target is None or target.shape != ds.shape:
                    got = "none" if target is None else str(target.shape)
                    raise DataError(path, f"needs a target of the k-space's shape {ds.shape}, got {got}")
                if shape is not None and ds.shape[1:] != shape:
                    raise DataError(path, f"slices are {ds.shape[1:]}, the files before are {shape}")
                shape = ds.shape[1:]
                counts.append(int(ds.shape[0]))
        self.slice_shape: tuple[int, int] = tuple(shape) if shape else (0, 0)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)
        # file index -> (file, its k-space dataset, its target dataset): looked up once per opening
        self._open: OrderedDict[int, tuple[h5py.File, h5py.Dataset, h5py.Dataset]] = OrderedDict()

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def file_of_slice(self) -> np.ndarray:
        """(N,) int64: the index of the file each slice is in."""
        return np.repeat(np.arange(len(self.paths), dtype=np.int64), self.counts)

    def _datasets(self, index: int) -> tuple[h5py.Dataset, h5py.Dataset]:
        opened = self._open.get(index)
        if opened is not None:
            self._open.move_to_end(index)
            return opened[1], opened[2]
        path = self.paths[index]
        try:
            handle = h5py.File(path, "r")
        except OSError as err:
            raise DataError(path, f"not a readable HDF5 file: {err}") from err
        kspace = handle["kspace"]
        self._open[index] = (handle, kspace, _target_dataset(handle, path, kspace.shape))
        if len(self._open) > MAX_OPEN_FILES:
            self._open.popitem(last=False)[1][0].close()
        return self._open[index][1], self._open[index][2]

    def read(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """Slice ``item``: k-space complex64 (H, W) and target float32 (H, W)."""
        if not 0 <= item < len(self):
            raise IndexError(f"slice {item} out of range for {len(self)} slices")
        index = int(np.searchsorted(self.starts, item, side="right")) - 1
        local, path = item - int(self.starts[index]), self.paths[index]
        kspace_ds, target_ds = self._datasets(index)
        try:
            kspace = kspace_ds[local].astype(np.complex64, copy=False)
            target = target_ds[local].astype(np.float32, copy=False)
        except OSError as err:
            raise DataError(path, f"slice {local} unreadable: {err}") from err
        _check_finite(kspace, path, f"k-space slice {local}")
        _check_finite(target, path, f"target slice {local}")
        return kspace, target

    def volume_targets(self, index: int) -> np.ndarray:
        """The whole target of file ``index``, float32 (S, H, W): one volume, for its maximum."""
        path = self.paths[index]
        with _open(path) as hf:
            target = _target_dataset(hf, path, hf["kspace"].shape)[()].astype(np.float32, copy=False)
        _check_finite(target, path, "target")
        return target

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1][0].close()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_open": OrderedDict()}
