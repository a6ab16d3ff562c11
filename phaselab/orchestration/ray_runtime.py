"""Start or join Ray the same way for every sweep script (local by default, a cluster with an address)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

WORKER_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",  # its background thread broke REST calls on offline machines
    "HDF5_USE_FILE_LOCKING": "FALSE",  # HDF5 on NFS
    "RAY_USAGE_STATS_ENABLED": "0",
}
# Ctrl-C stops the sweep like any program (our runs are closed KILLED, a rerun resumes) instead of Tune
# catching it, finishing quietly and printing its own (for us wrong) Tuner.restore instructions.
DRIVER_ENV = {**WORKER_ENV, "TUNE_DISABLE_SIGINT_HANDLER": "1"}


def init_ray(
    address: str | None = None, log_fn: Callable[[str], None] = print, num_cpus: int | None = None
) -> None:
    """``ray.init`` once per process: a fresh local instance, or join ``address`` ("auto" on a cluster)."""
    import ray

    if ray.is_initialized():
        return
    os.environ.update({k: v for k, v in DRIVER_ENV.items() if k not in os.environ})
    kwargs = {
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "runtime_env": {"env_vars": dict(WORKER_ENV)},
    }
    if address:
        ray.init(address=address, **kwargs)
    else:
        # "local": start a fresh instance even if a `ray start` cluster runs on this machine.
        # A small object store: our datasets travel as file paths, not objects.
        ray.init(
            address="local", num_cpus=num_cpus or os.cpu_count(), object_store_memory=256 * 1024**2, **kwargs
        )
    resources = ray.cluster_resources()
    log_fn(
        f"ray: {int(resources.get('CPU', 0))} CPU, {int(resources.get('GPU', 0))} GPU"
        f" on {len(ray.nodes())} node(s)"
    )
