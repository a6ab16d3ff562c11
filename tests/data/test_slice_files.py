"""SliceFiles: one slice at a time from single-coil fastMRI files, the values read_volume gives, errors
naming the file, a bounded number of open files, and pickling without them."""

import pickle

import numpy as np
import pytest

from phaselab.data import slice_files
from phaselab.data.errors import DataError
from phaselab.data.fastmri_io import read_volume, write_volume
from phaselab.data.slice_files import SliceFiles
from tests.data.conftest import random_kspace, write_raw


def _volumes(folder, counts=(3, 1, 2), size=8):
    paths = []
    for i, count in enumerate(counts):
        kspace = random_kspace((count, size, size), seed=i)
        target = np.abs(kspace) * (i + 1)
        paths.append(write_volume(folder / f"v{i}.h5", kspace, patient_id=f"p{i}", target=target))
    return paths


def test_reads_every_slice_as_read_volume_does(tmp_path):
    paths = _volumes(tmp_path)
    files = SliceFiles(paths)
    assert len(files) == 6 and files.slice_shape == (8, 8)
    assert files.file_of_slice.tolist() == [0, 0, 0, 1, 2, 2]
    item = 0
    for path in paths:
        vol = read_volume(path)
        for s in range(vol.num_slices):
            kspace, target = files.read(item)
            assert kspace.dtype == np.complex64 and target.dtype == np.float32
            assert np.array_equal(kspace, vol.kspace[s]) and np.array_equal(target, vol.target[s])
            item += 1
    assert np.array_equal(files.volume_targets(2), read_volume(paths[2]).target)
    with pytest.raises(IndexError):
        files.read(6)


def test_keeps_at_most_max_open_files_and_pickles_without_them(tmp_path, monkeypatch):
    monkeypatch.setattr(slice_files, "MAX_OPEN_FILES", 2)
    files = SliceFiles(_volumes(tmp_path))
    for item in (0, 3, 4, 1):
        files.read(item)
        assert len(files._open) <= 2
    copy = pickle.loads(pickle.dumps(files))
    assert not copy._open
    assert np.array_equal(copy.read(5)[0], files.read(5)[0])
    files.close()
    assert not files._open


def test_refuses_files_a_trial_cannot_train_on(tmp_path):
    multicoil = write_volume(tmp_path / "mc.h5", random_kspace((2, 2, 8, 8)), patient_id="m")
    with pytest.raises(DataError, match="mc.h5.*single-coil"):
        SliceFiles([multicoil])
    no_target = write_volume(tmp_path / "nt.h5", random_kspace((2, 8, 8)), patient_id="n")
    with pytest.raises(DataError, match="nt.h5.*needs a target"):
        SliceFiles([no_target])
    ones = np.ones((1, 4, 4))
    small = write_volume(tmp_path / "s.h5", random_kspace((1, 4, 4)), patient_id="s", target=ones)
    with pytest.raises(DataError, match="s.h5: slices are"):
        SliceFiles([*_volumes(tmp_path), small])


def test_a_non_finite_slice_is_refused_when_read(tmp_path):
    kspace = random_kspace((2, 4, 4))
    kspace[1, 0, 0] = np.nan
    write_raw(tmp_path / "nan.h5", kspace=kspace, reconstruction_esc=np.ones((2, 4, 4), np.float32))
    files = SliceFiles([tmp_path / "nan.h5"])
    files.read(0)
    with pytest.raises(DataError, match="nan.h5.*k-space slice 1 holds 1 NaN"):
        files.read(1)
