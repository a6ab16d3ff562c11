"""A trial's share of the cluster: a fractional GPU caps its CUDA memory (checked with CUDA faked, no GPU
needed), and multi-worker trials get a concurrency limit from the cluster when none is set."""

from types import SimpleNamespace

import pytest
import torch

from phaselab.data.phantoms import write_phantom_dataset
from phaselab.orchestration import resources, trial
from phaselab.orchestration.resources import (
    assigned_gpus,
    cap_cuda_memory,
    default_max_concurrent,
    memory_fraction,
)
from phaselab.orchestration.trial import TrialSpec, run_trial
from phaselab.tracking import Tracker


@pytest.fixture
def fake_cuda(monkeypatch):
    """CUDA reported available; the memory-fraction calls recorded instead of made."""
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(
        torch.cuda,
        "set_per_process_memory_fraction",
        lambda fraction, device=None: calls.append((fraction, device)),
    )
    return calls


def test_only_a_fraction_of_a_gpu_is_capped():
    assert memory_fraction(0.25) == 0.25 and memory_fraction(0.5) == 0.5
    assert memory_fraction(0) is None and memory_fraction(1) is None


def test_cap_sets_the_share_when_cuda_is_available(fake_cuda):
    assert cap_cuda_memory(0.25) == 0.25
    assert cap_cuda_memory(1.0) is None and cap_cuda_memory(0.0) is None
    assert fake_cuda == [(0.25, 0)]


def test_no_cap_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda *a, **k: pytest.fail("called"))
    assert cap_cuda_memory(0.5) is None


def test_outside_ray_a_trial_holds_no_gpu():
    assert assigned_gpus() == 0.0


def test_in_the_process_that_started_ray_a_trial_holds_no_gpu(ray_session):
    import ray

    assert ray.is_initialized()  # the driver: Ray's runtime context has no task to ask
    assert assigned_gpus() == 0.0


def test_a_trial_caps_its_memory_to_the_gpu_share_ray_assigned(tmp_path, fake_cuda, monkeypatch):
    monkeypatch.setattr(trial, "assigned_gpus", lambda: 0.25)  # what Ray reports inside a 0.25-GPU trial
    monkeypatch.setattr("phaselab.recon.train.resolve_device", lambda name: torch.device("cpu"))
    files = [str(p) for p in write_phantom_dataset(tmp_path / "ph", patients=2, slices=2, size=32, seed=0)]
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "res", artifact_root=tmp_path / "art")
    spec = TrialSpec(
        cell={"source": "gt", "acceleration": 4, "num_acs": 4, "seed": 0},
        trial_key="cap",
        trial_dir=str(tmp_path / "trial"),
        train_shards=files[:1],
        val_shards=files[1:],
        test_files=[],
        varnet={"cascades": 1, "chans": 2, "pools": 1},
        train={"lr": 1e-3, "batch_size": 2, "steps": 1, "eval_every": 1},
        tracking_uri=tracker.uri,
        experiment=tracker.experiment_name,
        parent_run_id=tracker.parent_run("res", "res")[0],
        resolved_config="{}",
    )
    run_trial(spec)
    assert fake_cuda == [(0.25, 0)]


def _res(**kw):
    base = dict(max_concurrent_trials=None, workers_per_trial=1, gpus_per_trial=0.0, cpus_per_trial=1.0)
    return SimpleNamespace(**{**base, **kw})


def test_multi_worker_trials_run_as_many_at_once_as_the_cluster_holds():
    cluster = {"CPU": 64.0, "GPU": 16.0}
    assert default_max_concurrent(_res(workers_per_trial=4, gpus_per_trial=1.0), cluster) == 4
    assert default_max_concurrent(_res(workers_per_trial=3, gpus_per_trial=1.0), cluster) == 5
    assert default_max_concurrent(_res(workers_per_trial=2, cpus_per_trial=4.0), {"CPU": 20.0}) == 2
    # fewer GPUs than one trial needs (an autoscaling cluster that starts empty): one at a time
    assert default_max_concurrent(_res(workers_per_trial=8, gpus_per_trial=1.0), {"CPU": 8.0}) == 1
    assert default_max_concurrent(_res(workers_per_trial=4, max_concurrent_trials=7), cluster) == 7
    assert default_max_concurrent(_res(gpus_per_trial=0.25), cluster) is None  # Tune places them itself
    assert resources.default_max_concurrent(_res(max_concurrent_trials=3), cluster) == 3


def test_the_grid_limits_multi_worker_trials_to_what_the_cluster_holds(tmp_path, monkeypatch):
    import ray
    from ray import tune

    from phaselab.config import load_config
    from phaselab.orchestration.grid import _run_tune

    tuners = []

    class FakeTuner:
        def __init__(self, trainable, **kw):
            tuners.append(kw)

        def fit(self):
            return None

    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 48.0, "GPU": 6.0})
    monkeypatch.setattr(tune, "Tuner", FakeTuner)
    lines = []
    ddp = ["resources.workers_per_trial=2", "resources.gpus_per_trial=1", "train.batch_size=2"]
    _run_tune(load_config("tiny", ddp), [{"source": "gt"}], tmp_path, "grid-000", lines.append)
    assert tuners[-1]["tune_config"].max_concurrent_trials == 3  # 6 GPUs / 2 per trial
    assert any("at most 3 multi-worker trial(s) at once" in line for line in lines)
    _run_tune(
        load_config("tiny", [*ddp, "resources.max_concurrent_trials=1"]), [{}], tmp_path, "g", lines.append
    )
    assert tuners[-1]["tune_config"].max_concurrent_trials == 1
