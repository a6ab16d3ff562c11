"""Generator training under Ray Train (2 CPU workers, DDP over gloo), MLflow logging, registry, faults."""

import os
import signal
import threading
import time

import pytest
import torch

from phaselab.data.phantoms import write_phantom_dataset
from phaselab.generators import load_phase_source
from phaselab.orchestration.generator_jobs import GeneratorJob, train_generator_tracked
from phaselab.orchestration.generator_registry import download_registered_generator
from phaselab.tracking import Tracker

pytestmark = pytest.mark.ray
TINY_GAN = {"size": 32, "ngf": 8, "ndf": 8, "n_layers": 2}


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantoms")
    return [str(p) for p in write_phantom_dataset(folder, patients=6, slices=2, size=32, kind="knee", seed=0)]


def _job(files, out, steps):
    train_cfg = {"steps": steps, "batch_size": 4, "eval_every": 2, "lr": 1e-3, "device": "cpu"}
    return GeneratorJob("gan", TINY_GAN, train_cfg, files[:4], files[4:], str(out / "gan.pt"))


def test_two_worker_training_logs_registers_and_loads(ray_session, phantom_files, tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "generators", artifact_root=tmp_path / "art")
    job = _job(phantom_files, tmp_path, steps=4)
    path, run_id = train_generator_tracked(
        job, tracker, None, workers=2, storage_path=tmp_path / "ray", log_fn=lambda _: None
    )
    source = load_phase_source(path)
    magnitude = torch.rand(2, 32, 32)
    phase = source.sample(magnitude, seed=3)
    assert phase.shape == (2, 32, 32) and phase.abs().max() <= torch.pi

    steps = [m.step for m in tracker.client.get_metric_history(run_id, "val_loss")]
    assert steps == [2, 4]
    registered = download_registered_generator(tracker, "phaselab-gan", dst=tmp_path / "dl")
    torch.testing.assert_close(load_phase_source(registered).sample(magnitude, seed=3), phase)
    # an MLflow model with a signature: mlflow.pyfunc loads it (weights_only) and samples the same phase
    import mlflow

    (version,) = tracker.client.search_model_versions("name='phaselab-gan'")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracker.uri)  # models:/ URIs resolve through the global tracking URI
    try:
        model = mlflow.pyfunc.load_model(f"models:/phaselab-gan/{version.version}")
    finally:
        mlflow.set_tracking_uri(previous)
    assert model.metadata.signature.inputs.inputs[0].shape == (-1, 32, 32)
    out = model.predict(magnitude.numpy(), params={"seed": 0})
    torch.testing.assert_close(torch.from_numpy(out), source.sample(magnitude, seed=[0, 1]))
    # the champion alias picks the version the grid takes when none is named
    from phaselab.orchestration.generator_registry import set_champion

    set_champion(tracker, "phaselab-gan", version.version)
    champion = download_registered_generator(tracker, "phaselab-gan", dst=tmp_path / "champion")
    assert champion.read_bytes() == registered.read_bytes()

    # Same job again: reused, not retrained or logged twice.
    again, again_run = train_generator_tracked(
        job, tracker, None, workers=2, storage_path=tmp_path / "ray", log_fn=lambda _: None
    )
    assert again_run == run_id and again == path


def _train_worker_pids() -> list[int]:
    """Ray names actor processes ``ray::<Class>...`` in their command line."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if b"ray::RayTrainWorker" in f.read():
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def _kill_one_worker_after_checkpoint(storage, stop: threading.Event, killed: list):
    while not stop.is_set() and not killed:
        if list(storage.glob("*/checkpoint_*")):
            for pid in _train_worker_pids()[:1]:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.1)


@pytest.mark.slow  # 30-80 s on 2 cores: out of CI (python -m pytest -m slow)
def test_killed_worker_resumes_from_checkpoint(ray_session, phantom_files, tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "generators", artifact_root=tmp_path / "art")
    job = _job(phantom_files, tmp_path, steps=40)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_one_worker_after_checkpoint, args=(tmp_path / "ray", stop, killed))
    killer.start()
    try:
        path, run_id = train_generator_tracked(
            job, tracker, None, workers=2, storage_path=tmp_path / "ray", log_fn=lambda _: None
        )
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was killed: training finished before the first checkpoint"
    load_phase_source(path)
    steps = [m.step for m in tracker.client.get_metric_history(run_id, "val_loss")]
    assert steps == list(range(2, 41, 2))  # every evaluation logged once, none lost, none repeated
