import h5py
import numpy as np
import pytest

from phaselab.data.errors import DataError
from phaselab.data.fastmri_io import list_volumes, read_attrs, read_slice, read_volume, write_volume

from .conftest import random_kspace, write_raw


def _problem(path) -> str:
    with pytest.raises(DataError) as info:
        read_volume(path)
    err = info.value
    assert err.path == path and str(err).startswith(f"{path}: ")
    return err.problem


def test_missing_kspace(tmp_path):
    write_raw(tmp_path / "no_kspace.h5", reconstruction_esc=np.ones((1, 4, 4), np.float32))
    assert _problem(tmp_path / "no_kspace.h5") == "dataset 'kspace' missing"


def test_truncated_hdf5(tmp_path):
    path = write_volume(tmp_path / "cut.h5", random_kspace((4, 32, 32)), patient_id="p")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in _problem(path)
    with pytest.raises(DataError, match="cut.h5: not a readable HDF5 file"):
        read_attrs(path)


def test_not_hdf5_and_missing_file(tmp_path):
    (tmp_path / "text.h5").write_text("hello")
    assert "not a readable HDF5 file" in _problem(tmp_path / "text.h5")
    assert _problem(tmp_path / "absent.h5") == "file does not exist"


@pytest.mark.parametrize("shape", [(8, 8), (1, 1, 2, 8, 8)])
def test_wrong_number_of_dims(tmp_path, shape):
    write_raw(tmp_path / "dims.h5", kspace=random_kspace(shape))
    problem = _problem(tmp_path / "dims.h5")
    assert f"has {len(shape)} dims" in problem and "expected 3" in problem and "multi-coil" in problem


def test_real_kspace_and_empty_kspace(tmp_path):
    write_raw(tmp_path / "real.h5", kspace=np.ones((1, 4, 4), np.float32))
    assert "dtype float32, expected complex" in _problem(tmp_path / "real.h5")
    write_raw(tmp_path / "empty.h5", kspace=np.zeros((0, 4, 4), np.complex64))
    assert "empty" in _problem(tmp_path / "empty.h5")


def test_nan_and_inf_are_counted(tmp_path):
    kspace = random_kspace((3, 4, 4))
    kspace[0, 0, :3] = np.nan
    kspace[1, 2, 2] = np.inf
    write_raw(tmp_path / "nan.h5", kspace=kspace)
    assert _problem(tmp_path / "nan.h5") == "k-space holds 3 NaN and 1 inf values (of 48)"
    with pytest.raises(DataError, match="nan.h5: k-space slice 0 holds 3 NaN"):
        read_slice(tmp_path / "nan.h5", 0)
    with pytest.raises(DataError, match="slice 1 holds 0 NaN and 1 inf"):
        read_slice(tmp_path / "nan.h5", 1)
    assert np.array_equal(read_slice(tmp_path / "nan.h5", 2).kspace, kspace[2])  # clean slices still read


def test_target_inconsistent_with_slices(tmp_path):
    write_raw(tmp_path / "t.h5", kspace=random_kspace((3, 4, 4)), reconstruction_esc=np.ones((2, 4, 4)))
    problem = _problem(tmp_path / "t.h5")
    assert "'reconstruction_esc' has shape (2, 4, 4)" in problem and "3 k-space slices" in problem


def test_nan_target_and_bad_header(tmp_path):
    target = np.ones((1, 4, 4), np.float32)
    target[0, 0, 0] = np.nan
    write_raw(tmp_path / "tn.h5", kspace=random_kspace((1, 4, 4)), reconstruction_esc=target)
    assert "'reconstruction_esc' holds 1 NaN" in _problem(tmp_path / "tn.h5")
    write_raw(tmp_path / "hdr.h5", kspace=random_kspace((1, 4, 4)), ismrmrd_header="<nope")
    assert "ismrmrd_header' invalid" in _problem(tmp_path / "hdr.h5")


def test_kspace_group_instead_of_dataset(tmp_path):
    with h5py.File(tmp_path / "group.h5", "w") as hf:
        hf.create_group("kspace")
    assert "group" in _problem(tmp_path / "group.h5")


def test_empty_and_missing_directory(tmp_path):
    with pytest.raises(DataError, match="empty directory") as info:
        list_volumes(tmp_path)
    assert info.value.path == tmp_path
    with pytest.raises(DataError, match="nowhere: directory does not exist"):
        list_volumes(tmp_path / "nowhere")
    (tmp_path / "file.h5").write_text("x")
    with pytest.raises(DataError, match="not a directory"):
        list_volumes(tmp_path / "file.h5")
