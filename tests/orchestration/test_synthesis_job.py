"""Ray Data synthesis: shards readable by fastMRI's SliceDataset, magnitude kept, reruns skip done shards."""

from pathlib import Path

import numpy as np
import pytest
import torch

from phaselab.data.fastmri_io import read_volume
from phaselab.data.phantoms import write_phantom_dataset
from phaselab.generators import create_phase_source
from phaselab.mri.fft import ifft2c
from phaselab.orchestration.synthesis_job import run_synthesis
from phaselab.synthesis import SourceSpec, plan_synthesis, read_manifest, sample_phase, slice_seed

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantoms")
    return [
        str(p) for p in write_phantom_dataset(folder, patients=3, slices=2, size=32, kind="brain", seed=1)
    ]


@pytest.mark.parametrize("source", ["smooth", "gan"])
def test_shards_load_in_fastmri_and_keep_the_magnitude(ray_session, volumes, tmp_path, source):
    from fastmri.data import SliceDataset

    checkpoint = None
    if source == "gan":  # a learned generator travels to the actors as a checkpoint
        checkpoint = str(
            create_phase_source("gan", size=32, ngf=8, ndf=8, n_layers=2).save(tmp_path / "g.pt")
        )
    spec = SourceSpec(checkpoint=checkpoint) if checkpoint else SourceSpec(source)
    plan = plan_synthesis(spec, volumes, tmp_path / "cache", seed=5, dataset_key="k")
    shards = run_synthesis(plan, log_fn=lambda _: None)
    assert plan.is_complete() and [p.exists() for p in shards] == [True] * 3

    dataset = SliceDataset(plan.out_dir, challenge="singlecoil", transform=None)
    assert len(dataset) == 6
    for original, shard in zip(volumes, shards, strict=True):
        real = ifft2c(torch.from_numpy(read_volume(original).kspace))
        synthetic = read_volume(shard)
        image = ifft2c(torch.from_numpy(synthetic.kspace))
        torch.testing.assert_close(image.abs(), real.abs(), rtol=1e-4, atol=1e-5 * float(real.abs().max()))
        assert synthetic.attrs["phaselab_phase_source"] == source
        # The stored phase is what the source gives for these slices and seeds, independent of batching.
        expected = sample_phase(
            spec.build(),
            real.abs().float(),
            [slice_seed(5, Path(original).name, i) for i in range(2)],
            true_phase=torch.angle(real).float(),
            batch_size=1,
        )
        np.testing.assert_allclose(synthetic.extras["phaselab_phase"], expected.numpy(), atol=1e-5)

    manifest = read_manifest(plan.out_dir)
    assert manifest["phase_source"] == source and [v["slices"] for v in manifest["volumes"]] == [2, 2, 2]
    assert (manifest["checkpoint_sha256"] is not None) == (checkpoint is not None)
    stamps = [p.stat().st_mtime_ns for p in shards]
    run_synthesis(plan, log_fn=lambda _: None)  # complete: nothing is rewritten
    assert [p.stat().st_mtime_ns for p in shards] == stamps


def test_a_killed_job_finishes_only_the_missing_shards(ray_session, volumes, tmp_path):
    plan = plan_synthesis(SourceSpec("sinusoid"), volumes, tmp_path / "cache", seed=0, dataset_key="k")
    run_synthesis(plan, log_fn=lambda _: None)
    plan.manifest_path.unlink()  # as if the job died after writing its shards but before the manifest
    victim = plan.shards()[1]
    victim.unlink()
    stamps = {p: p.stat().st_mtime_ns for p in plan.shards() if p != victim}
    run_synthesis(plan, log_fn=lambda _: None)
    assert victim.exists() and plan.is_complete()
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())


def test_auto_synthesis_actors_follow_the_clusters_gpus_or_custom_units(ray_session):
    import ray

    from phaselab.orchestration.synthesis_job import actors_for

    total = ray.cluster_resources()
    assert actors_for(3, 10, True, None) == 3  # a number is taken as given
    assert actors_for("auto", 10, False, None) == 1  # on CPUs the trials need the cores
    assert actors_for("auto", 10, True, None) == max(1, min(int(total.get("GPU", 0)), 10))
    cpus = int(total["CPU"])  # a custom resource stands in for GPUs here: every CPU unit is one actor
    assert actors_for("auto", 100, False, {"CPU": 1.0}) == cpus
    assert actors_for("auto", 100, False, {"CPU": 0.5}) == 2 * cpus
    assert actors_for("auto", 1, False, {"CPU": 0.5}) == 1  # never more actors than volumes
