"""Start or join Ray the same way for every sweep script (local by default, a cluster with an address)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

WORKER_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",  # its background thread broke REST calls on offline machines
    "HDF5_USE_FILE_LOCKING": "FALSE",  # HDF5 on NFS
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray Train copies every print of a worker into its logger and to stdout: each line twice.
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",
}
# Ctrl-C stops the sweep like any program (our runs are closed KILLED, a rerun resumes) instead of Tune
# catching it, finishing quietly and printing its own (for us wrong) Tuner.restore instructions.
DRIVER_ENV = {**WORKER_ENV, "TUNE_DISABLE_SIGINT_HANDLER": "1"}
# Never shipped to the workers: environments, version control, caches, run outputs, data files.
WORKING_TREE_EXCLUDES = [
    *(".git", ".venv", "venv", ".ci/cache", "**/__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache"),
    *(".mypy_cache", ".import_linter_cache", "phaselab_runs", "ray_results", "mlruns", "mlartifacts"),
    *("outputs", "*.egg-info", "mlflow.db", "*.h5", "*.pt", "*.ckpt", "*.npz"),
]


def working_tree() -> Path | None:
    """The repository phaselab runs from (it holds pyproject.toml), None for an installed package."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "phaselab").is_dir() else None


def cluster_runtime_env(ship_working_tree: bool, exclude: list[str | Path] = ()) -> dict[str, Any]:
    """The runtime env of a driver joining a cluster: phaselab's worker variables and, unless
    ``ship_working_tree`` is false, this working tree as every worker's ``working_dir``, so that a
    ``ray submit`` after a local edit runs the edited code on the workers too. ``exclude``: more paths
    not to ship (e.g. an output folder inside the tree)."""
    env: dict[str, Any] = {"env_vars": dict(WORKER_ENV)}
    root = working_tree() if ship_working_tree else None
    if root is None:
        return env
    excludes = list(WORKING_TREE_EXCLUDES)
    for path in exclude:
        if "://" in str(path):  # s3://... storage is not in the tree
            continue
        path = Path(path).resolve()
        if path.is_relative_to(root) and path != root:
            excludes.append(path.relative_to(root).as_posix())
    return {**env, "working_dir": str(root), "excludes": excludes}


def init_ray(
    address: str | None = None,
    log_fn: Callable[[str], None] = print,
    num_cpus: int | None = None,
    *,
    ship_working_tree: bool = False,
    exclude: list[str | Path] = (),
) -> None:
    """``ray.init`` once per process: a fresh local instance, or join ``address`` ("auto" on a cluster),
    shipping this working tree to the workers when ``ship_working_tree`` (see cluster_runtime_env)."""
    import ray

    if ray.is_initialized():
        return
    os.environ.update({k: v for k, v in DRIVER_ENV.items() if k not in os.environ})
    kwargs = {"include_dashboard": False, "logging_level": logging.WARNING}
    # A local instance enables token auth (good) and says so on every start (noise).
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    if address:
        runtime_env = cluster_runtime_env(ship_working_tree, exclude)
        if "working_dir" in runtime_env:
            log_fn(f"ray: shipping the working tree {runtime_env['working_dir']} to the workers")
        elif ship_working_tree:
            log_fn("ray: phaselab is an installed package, not a working tree: workers run their own copy")
        ray.init(address=address, runtime_env=runtime_env, **kwargs)
    else:
        # "local": start a fresh instance even if a `ray start` cluster runs on this machine.
        # A small object store: our datasets travel as file paths, not objects.
        runtime_env = {
            "env_vars": dict(WORKER_ENV),
            "worker_process_setup_hook": f"{__name__}.quiet_workers",
        }
        ray.init(
            address="local",
            num_cpus=num_cpus or os.cpu_count(),
            object_store_memory=256 * 1024**2,
            runtime_env=runtime_env,
            **kwargs,
        )
    resources = ray.cluster_resources()
    log_fn(
        f"ray: {int(resources.get('CPU', 0))} CPU, {int(resources.get('GPU', 0))} GPU"
        f" on {len(ray.nodes())} node(s)"
    )


def quiet_workers() -> None:
    """Worker setup hook of a local instance: keep the terminal for phaselab's own progress lines.

    Ray Train's placement-group cleaner polls the state API of Ray's dashboard, which a local instance
    started by phaselab does not run, and would flood the terminal with warnings (or, when other Ray
    instances run on the machine, a traceback); its job, freeing a dead controller's placement group, is
    done by Ray itself when our driver exits.
    """
    import threading

    logging.getLogger("ray.train.v2._internal.execution.controller.placement_group_cleaner").setLevel(
        logging.ERROR
    )
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.thread is not None and args.thread.name == "PlacementGroupCleanerMonitor":
            return
        previous(args)

    threading.excepthook = hook
