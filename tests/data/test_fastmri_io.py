import h5py
import numpy as np
import pytest
import torch
from fastmri.data import SliceDataset

from phaselab.data.fastmri_io import list_volumes, read_attrs, read_slice, read_volume, write_volume
from phaselab.data.ismrmrd import parse_header

from .conftest import random_kspace


def test_single_coil_round_trip_is_exact(tmp_path):
    kspace = random_kspace((3, 20, 16), seed=1)
    target = np.abs(random_kspace((3, 12, 10), seed=2))
    phase = np.angle(random_kspace((3, 20, 16), seed=3)).astype(np.float32)
    path = write_volume(
        tmp_path / "knee_001.h5",
        kspace,
        patient_id="p001",
        target=target,
        extras={"phaselab_phase": phase},
        extra_attrs={
            "phase_source": "smooth",
            "seed": 7,
            "coil": {"method": "svd", "kept": 0.9},
            "ids": [1, 2],
        },
    )
    volume = read_volume(path)
    assert volume.path == path and not volume.is_multicoil and volume.num_slices == 3
    assert volume.kspace.dtype == np.complex64 and np.array_equal(volume.kspace, kspace)
    assert volume.target_key == "reconstruction_esc"
    assert volume.target.dtype == np.float32 and np.array_equal(volume.target, target)
    assert np.array_equal(volume.extras["phaselab_phase"], phase)
    assert set(volume.extras) == {"phaselab_phase"}
    attrs = volume.attrs
    assert attrs["patient_id"] == "p001" == volume.patient_id
    assert attrs["acquisition"] == "CORPD_FBK"
    assert attrs["max"] == pytest.approx(float(target.max()))
    assert attrs["norm"] == pytest.approx(float(np.linalg.norm(target)), rel=1e-6)
    assert attrs["phaselab_phase_source"] == "smooth"
    assert attrs["phaselab_seed"] == 7 and isinstance(attrs["phaselab_seed"], int)
    assert attrs["phaselab_coil"] == {"method": "svd", "kept": 0.9}
    assert attrs["phaselab_ids"] == [1, 2]
    assert "phaselab_json_attrs" not in attrs
    header = parse_header(volume.header)
    assert header["encoded"][:2] == (20, 16) and header["recon"][:2] == (12, 10)
    assert read_attrs(path) == attrs


def test_multicoil_round_trip_accepts_torch_and_defaults_to_rss(tmp_path):
    kspace = torch.from_numpy(random_kspace((2, 4, 8, 10), seed=4))
    target = kspace.abs().pow(2).sum(1).sqrt()
    path = write_volume(tmp_path / "brain.h5", kspace, patient_id="b1", acquisition="AXT2")
    volume = read_volume(path)
    assert volume.is_multicoil and np.array_equal(volume.kspace, kspace.numpy())
    assert volume.target is None and "max" not in volume.attrs
    path = write_volume(tmp_path / "brain.h5", kspace, patient_id="b1", target=target)
    volume = read_volume(path)
    assert volume.target_key == "reconstruction_rss"
    assert np.array_equal(volume.target, target.numpy())
    assert read_volume(path, load_target=False).target is None


def test_complex128_is_stored_as_complex64(tmp_path):
    kspace = random_kspace((1, 4, 4)).astype(np.complex128)
    volume = read_volume(write_volume(tmp_path / "a.h5", kspace, patient_id="a"))
    assert volume.kspace.dtype == np.complex64
    assert np.array_equal(volume.kspace, kspace.astype(np.complex64))


@pytest.mark.parametrize(
    ("challenge", "shape", "target_key"),
    [("singlecoil", (3, 24, 18), "reconstruction_esc"), ("multicoil", (2, 3, 24, 18), "reconstruction_rss")],
)
def test_written_files_load_in_fastmri_slice_dataset(tmp_path, challenge, shape, target_key):
    kspace = random_kspace(shape, seed=5)
    target = np.abs(random_kspace((shape[0], 16, 16), seed=6))
    for i in range(2):
        write_volume(tmp_path / f"vol{i}.h5", kspace * (i + 1), patient_id=f"p{i}", target=target)
    dataset = SliceDataset(tmp_path, challenge=challenge, transform=None)
    assert len(dataset) == 2 * shape[0]
    ksp, mask, tgt, attrs, fname, index = dataset[shape[0] + 1]
    assert fname == "vol1.h5" and index == 1 and mask is None
    assert np.array_equal(ksp, kspace[1] * 2)
    assert np.array_equal(tgt, target[1].astype(np.float32))
    assert attrs["padding_left"] == 0 and attrs["padding_right"] == shape[-1]
    assert attrs["encoding_size"] == (shape[-2], shape[-1], 1) and attrs["recon_size"] == (16, 16, 1)
    assert attrs["patient_id"] == "p1" and attrs["max"] == pytest.approx(target.max())


def test_read_slice_matches_volume(tmp_path):
    kspace = random_kspace((4, 2, 6, 5), seed=8)
    target = np.abs(random_kspace((4, 6, 5), seed=9))
    phase = np.angle(random_kspace((4, 6, 5), seed=10))
    path = write_volume(
        tmp_path / "v.h5", kspace, patient_id="p", target=target, extras={"phaselab_phase": phase}
    )
    piece = read_slice(path, 2, extras=("phaselab_phase",))
    assert piece.index == 2 and piece.target_key == "reconstruction_rss"
    assert np.array_equal(piece.kspace, kspace[2]) and np.array_equal(piece.target, target[2])
    assert np.array_equal(piece.extras["phaselab_phase"], phase[2])
    assert piece.attrs["patient_id"] == "p"
    with pytest.raises(IndexError, match="v.h5"):
        read_slice(path, 4)


def test_list_volumes_sorted_h5_only(tmp_path):
    for name in ("b.h5", "a.h5", "c.h5"):
        write_volume(tmp_path / name, random_kspace((1, 4, 4)), patient_id=name)
    (tmp_path / "notes.txt").write_text("not data")
    assert [p.name for p in list_volumes(tmp_path)] == ["a.h5", "b.h5", "c.h5"]


def test_write_is_atomic_and_leaves_no_tmp_on_failure(tmp_path):
    good = random_kspace((1, 4, 4))
    path = write_volume(tmp_path / "keep.h5", good, patient_id="p")
    with pytest.raises(ValueError, match="complex"):
        write_volume(tmp_path / "keep.h5", np.ones((1, 4, 4), np.float32), patient_id="p")
    # an extra h5py cannot store fails mid-write, after the temp file exists
    with pytest.raises(TypeError):
        write_volume(tmp_path / "keep.h5", good * 2, patient_id="p", extras={"bad": np.array([object()])})
    with pytest.raises(TypeError):
        write_volume(tmp_path / "new.h5", good, patient_id="p", extra_attrs={"bad": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.h5"]
    assert np.array_equal(read_volume(path).kspace, good)  # the old file is untouched


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kspace": random_kspace((4, 4))}, "shape"),
        ({"kspace": random_kspace((0, 4, 4))}, "non-empty"),
        ({"kspace": random_kspace((1, 4, 4)) * np.nan}, "NaN"),
        ({"target": np.ones((2, 4, 4))}, "1 slices"),
        ({"target": np.ones((1, 4, 4), np.complex64)}, "real"),
        ({"target_key": "reconstruction_xyz"}, "target_key"),
        ({"extras": {"kspace": np.ones(3)}}, "reserved"),
        ({"extra_attrs": {"seed": 1, "phaselab_seed": 2}}, "collides"),
    ],
)
def test_write_rejects_bad_arguments(tmp_path, kwargs, message):
    args = {"kspace": random_kspace((1, 4, 4)), "patient_id": "p", **kwargs}
    with pytest.raises(ValueError, match=message):
        write_volume(tmp_path / "x.h5", **args)
    assert list(tmp_path.iterdir()) == []


def test_reader_accepts_fastmri_singlecoil_with_both_targets(tmp_path):
    # fastMRI single-coil knee files carry reconstruction_esc and reconstruction_rss, plus no phaselab attrs
    path = tmp_path / "file1000001.h5"
    kspace = random_kspace((2, 8, 6))
    with h5py.File(path, "w") as hf:
        hf.create_dataset("kspace", data=kspace)
        hf.create_dataset("reconstruction_rss", data=np.ones((2, 4, 4), np.float32))
        hf.create_dataset("reconstruction_esc", data=np.full((2, 4, 4), 2, np.float32))
        hf.attrs["acquisition"] = np.bytes_(b"CORPDFS_FBK")
        hf.attrs["max"] = np.float64(2.0)
    volume = read_volume(path)
    assert volume.target_key == "reconstruction_esc" and volume.target[0, 0, 0] == 2
    assert volume.attrs == {"acquisition": "CORPDFS_FBK", "max": 2.0}
    assert volume.header == "" and volume.extras == {}
