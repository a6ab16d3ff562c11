"""Archive synthesis from magnitude-only files: fastMRI-loadable output, exact magnitude, the source's phase,
bad inputs, reruns, the CLI and the Ray Data path."""

import dataclasses
import json
import math

import fastmri
import h5py
import numpy as np
import pytest
import torch
from fastmri.data import SliceDataset
from fastmri.data import transforms as T

from phaselab.data.errors import DataError
from phaselab.data.magnitude import read_magnitude_volume, to_working_size
from phaselab.generators import create_phase_source, load_phase_source
from phaselab.synthesis import (
    BadInputs,
    SynthesisSettings,
    VolumeTask,
    manifest_path,
    run_task,
    slice_seed,
    synthesize_archive,
)

from ..data.magnitude_files import EPI_4D, MR_SMALL, bad_files, edited_dicom, real_archive
from .tiny_gan import train_tiny_gan

SIZE = 80  # up from the 64x64 DICOM, down from the NIfTI's 96x96 square FOV


def quiet(_line: str) -> None:
    pass


def wrapped(a: np.ndarray) -> np.ndarray:
    return np.abs(np.angle(np.exp(1j * a)))


@pytest.mark.parametrize("source", ["smooth", "zero"])
def test_real_archive_gives_fastmri_volumes_with_the_input_magnitude_and_the_source_phase(tmp_path, source):
    inputs = real_archive(tmp_path / "archive")
    out = tmp_path / "kspace"
    result = synthesize_archive(inputs, out, source, size=SIZE, seed=3, log_fn=quiet)
    assert [p.name for p in result.outputs] == ["nibabel_example4d.h5", "pydicom_MR_small.h5"]
    assert sorted(p.name for p in out.iterdir()) == ["nibabel_example4d.h5", "pydicom_MR_small.h5"]

    dataset = SliceDataset(out, challenge="singlecoil")  # fastMRI's own loader opens every file of root
    assert len(dataset) == 24 + 1
    phase_source = create_phase_source(source)
    for path, name in ((EPI_4D, "nibabel_example4d"), (MR_SMALL, "pydicom_MR_small")):
        magnitude = to_working_size(read_magnitude_volume(path).magnitude, SIZE)
        seeds = [slice_seed(3, name, i) for i in range(magnitude.shape[0])]
        phase = phase_source.sample(magnitude, seed=seeds).numpy()
        samples = [s for s in dataset.raw_samples if s.fname.name == f"{name}.h5"]
        for sample in samples[:: max(1, len(samples) // 4)]:
            kspace, _mask, target, attrs, fname, k = dataset[dataset.raw_samples.index(sample)]
            image = fastmri.ifft2c(T.to_tensor(kspace))  # fastMRI's FFT as the oracle
            modulus = fastmri.complex_abs(image).numpy()
            scale = magnitude[k].max().item()
            np.testing.assert_allclose(modulus, magnitude[k].numpy(), rtol=0, atol=2e-6 * scale)
            np.testing.assert_array_equal(target, magnitude[k].numpy())
            inside = magnitude[k].numpy() > 0.01 * scale
            angle = torch.atan2(image[..., 1], image[..., 0]).numpy()
            assert wrapped(angle - phase[k])[inside].max() < 1e-3
            assert attrs["max"] == pytest.approx(float(magnitude.max()))
        with h5py.File(out / f"{name}.h5") as hf:
            np.testing.assert_array_equal(hf["phaselab_phase"][()], phase)
            assert hf.attrs["phaselab_phase_source"] == source and hf.attrs["phaselab_seed"] == 3
            assert hf.attrs["phaselab_input"] == path.name and hf.attrs["phaselab_size"] == SIZE
            assert hf.attrs["phaselab_input_format"] == ("nifti" if path == EPI_4D else "dicom")
    if source == "smooth":  # a real phase map, not zero
        assert np.std(phase) > 0.1
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["phase_source"] == source and [v["slices"] for v in manifest["volumes"]] == [24, 1]
    assert manifest["volumes"][1]["patient_id"].startswith("p")  # a pseudonym of the DICOM PatientID


def test_bad_inputs_stop_everything_or_are_skipped(tmp_path):
    archive = real_archive(tmp_path / "archive")
    expected = bad_files(archive)
    out = tmp_path / "kspace"
    with pytest.raises(BadInputs) as info:
        synthesize_archive(archive, out, "zero", size=32, log_fn=quiet)
    assert sorted(err.path.name for err in info.value.errors) == sorted(expected)
    for err in info.value.errors:
        assert expected[err.path.name] in err.problem
    assert not out.exists() or not any(out.iterdir()), "nothing may be written when inputs are bad"
    assert not manifest_path(out).exists()

    lines = []
    result = synthesize_archive(archive, out, "zero", size=32, skip_bad=True, log_fn=lines.append)
    assert sorted(p.name for p in out.iterdir()) == ["nibabel_example4d.h5", "pydicom_MR_small.h5"]
    assert len(result.bad) == 4 and sum(line.startswith("BAD ") for line in lines) == 4
    manifest = json.loads(manifest_path(out).read_text())
    assert sorted(b["path"].rsplit("/", 1)[1] for b in manifest["bad"]) == sorted(expected)


def test_rerun_skips_finished_outputs_and_refuses_a_different_synthesis(tmp_path):
    archive = real_archive(tmp_path / "archive")
    out = tmp_path / "kspace"
    first = synthesize_archive(archive, out, "smooth", size=32, seed=1, log_fn=quiet)
    stamps = {p: p.stat().st_mtime_ns for p in first.outputs}
    (out / ".pydicom_MR_small.h5.deadbeef.tmp").write_bytes(b"left by a killed run")
    edited_dicom(MR_SMALL, archive / "second.dcm", SeriesInstanceUID="1.2.826.0.1.3680043.2.1125.8")
    again = synthesize_archive(archive, out, "smooth", size=32, seed=1, log_fn=quiet)
    assert [p.name for p in again.written] == ["second.h5"] and len(again.skipped) == 2
    assert {p: p.stat().st_mtime_ns for p in first.outputs} == stamps
    assert not list(out.glob(".*.tmp"))
    with pytest.raises(DataError, match=r"written by another synthesis \(seed differ\)"):
        synthesize_archive(archive, out, "smooth", size=32, seed=2, log_fn=quiet)


def test_checkpoint_source_and_refused_sources(tmp_path):
    archive = real_archive(tmp_path / "archive")
    ckpt = create_phase_source("sinusoid").save(tmp_path / "sinusoid.pt")
    result = synthesize_archive(archive, tmp_path / "out", checkpoint=ckpt, size=32, log_fn=quiet)
    with h5py.File(result.outputs[0]) as hf:
        assert hf.attrs["phaselab_phase_source"] == "sinusoid"
        assert (
            hf.attrs["phaselab_checkpoint"] == str(ckpt) and len(hf.attrs["phaselab_checkpoint_sha256"]) == 64
        )
    with pytest.raises(ValueError, match="'gt' needs the acquired phase"):
        synthesize_archive(archive, tmp_path / "gt", "gt", log_fn=quiet)
    with pytest.raises(ValueError, match="must be trained"):
        synthesize_archive(archive, tmp_path / "sbdm", "sbdm", log_fn=quiet)
    with pytest.raises(ValueError, match="exactly one"):
        synthesize_archive(archive, tmp_path / "both", "zero", checkpoint=ckpt, log_fn=quiet)


@pytest.fixture(scope="module")
def gan_checkpoint(tmp_path_factory):
    """A GAN trained 2 steps on 32x32 phantoms, saved."""
    return train_tiny_gan(size=32, steps=2).save(tmp_path_factory.mktemp("gan") / "gan.pt")


def test_a_trained_generator_records_its_training_size(gan_checkpoint):
    source = load_phase_source(gan_checkpoint)
    assert source.trained_size == 32
    state = source.state_dict()
    assert state["trained_size"].ndim == 0 and int(state["trained_size"]) == 32
    old = {k: v for k, v in state.items() if k != "trained_size"}  # a checkpoint from before: no size
    source.load_state_dict(old)
    assert source.trained_size is None
    untrained = create_phase_source("gan", size=32, ngf=8, ndf=8, n_layers=2)
    assert untrained.trained_size is None and "trained_size" not in untrained.state_dict()


def test_a_generator_runs_only_at_the_size_it_was_trained_at(tmp_path, gan_checkpoint):
    archive = real_archive(tmp_path / "archive")
    out = tmp_path / "at64"
    message = "generator 'gan' was trained on 32x32 images; use --size 32 (got 64)"
    with pytest.raises(ValueError) as info:
        synthesize_archive(archive, out, checkpoint=gan_checkpoint, size=64, log_fn=quiet)
    assert str(info.value) == message and type(info.value) is ValueError  # the CLI's "error: ..."
    assert not out.exists(), "nothing may be written"

    result = synthesize_archive(archive, tmp_path / "at32", checkpoint=gan_checkpoint, size=32, log_fn=quiet)
    assert len(result.written) == 2
    with h5py.File(result.outputs[0]) as hf:
        assert hf.attrs["phaselab_phase_source"] == "gan" and hf["phaselab_phase"].shape == (24, 32, 32)

    # the grid's tasks (and Ray actors) check once per task, against the magnitude's size
    source = load_phase_source(gan_checkpoint)
    task = VolumeTask("mr", str(tmp_path / "task" / "mr.h5"), files=(str(MR_SMALL),), format="dicom")
    with pytest.raises(ValueError, match=r"trained on 32x32 images; use --size 32 \(got 64\)"):
        run_task(source, task, SynthesisSettings(size=64))
    assert not (tmp_path / "task").exists()
    assert run_task(source, task, SynthesisSettings(size=32)).exists()


def test_a_baseline_has_no_size_constraint(tmp_path):
    archive = real_archive(tmp_path / "archive")
    for size in (24, 64):
        result = synthesize_archive(archive, tmp_path / f"s{size}", "smooth", size=size, log_fn=quiet)
        assert len(result.written) == 2


def test_ray_actor_callable_writes_what_the_in_process_loop_writes(tmp_path):
    from phaselab.orchestration.synthesis_job import SynthesisActor
    from phaselab.synthesis import SourceSpec

    archive = real_archive(tmp_path / "archive")
    local = synthesize_archive(archive, tmp_path / "local", "smooth", size=32, seed=5, log_fn=quiet)
    spec = SourceSpec("smooth")
    identity = {**spec.identity(spec.build()), "checkpoint": None}
    # another batching must not change a slice's phase
    settings = SynthesisSettings(seed=5, size=32, batch_size=4, input_dir=str(archive), identity=identity)
    actor = SynthesisActor(spec.as_dict(), dataclasses.asdict(settings))
    output = str(tmp_path / "actor" / "nibabel_example4d.h5")
    task = VolumeTask("nibabel_example4d", output, files=(str(archive / EPI_4D.name),), format="nifti")
    row = actor({"task": np.array([json.dumps(task.as_dict())])})
    assert row["output"].tolist() == [output]
    with h5py.File(local.outputs[0]) as ha, h5py.File(row["output"][0]) as hb:
        np.testing.assert_array_equal(ha["kspace"][()], hb["kspace"][()])


@pytest.mark.slow  # Ray Data actors take ~20 s to start on 2 CPU cores
@pytest.mark.ray
def test_ray_data_path_writes_the_same_volumes(tmp_path, ray_session):
    archive = real_archive(tmp_path / "archive")
    local = synthesize_archive(archive, tmp_path / "local", "smooth", size=32, seed=5, log_fn=quiet)
    from phaselab.orchestration.synthesis_job import run_tasks_on_ray

    on_ray = synthesize_archive(
        archive, tmp_path / "ray", "smooth", size=32, seed=5, runner=run_tasks_on_ray, log_fn=quiet
    )
    assert [p.name for p in on_ray.written] == [p.name for p in local.written]
    for a, b in zip(local.outputs, on_ray.outputs, strict=True):
        with h5py.File(a) as ha, h5py.File(b) as hb:
            np.testing.assert_array_equal(ha["kspace"][()], hb["kspace"][()])  # per-slice seeds: same phase
    assert math.isfinite(json.loads(manifest_path(tmp_path / "ray").read_text())["seconds"])
