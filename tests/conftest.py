"""Shared fixtures: one local Ray instance per test session (ray.init costs ~15 s on 2 cores)."""

import os

import pytest
import torch

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")

# Tiny tensors: one thread avoids oversubscribing 2-core CI machines (Ray workers run beside the tests).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ray_session():
    """A 2-CPU local Ray with a small object store; yields its GCS address for subprocess drivers."""
    ray = pytest.importorskip("ray")
    from phaselab.orchestration.ray_runtime import init_ray

    init_ray(None, log_fn=lambda _: None, num_cpus=2)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
