"""The recon grid driver: data -> splits -> synthesis per source -> Tune grid of VarNet trials -> metric grid.

Resuming is by content: the sweep's key is a hash of what determines its results, every cell's state
lives in ``<output>/sweeps/<key>/trials/<cell>``, and the MLflow parent run is found again by its tag.
Rerunning the same command therefore skips finished trials, continues killed ones from their last
checkpoint and reuses every cached dataset.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phaselab.config import SweepConfig
from phaselab.orchestration.mixing import cell_shards, mixing_cells
from phaselab.orchestration.phase_eval import evaluate_phase_sources
from phaselab.orchestration.source_kspace import synthesize_sources
from phaselab.orchestration.sweep import open_sweep, trial_spec
from phaselab.orchestration.trial import cell_name, read_result, save_spec
from phaselab.tracking import Tracker


@dataclass
class GridResult:
    rows: list[dict[str, Any]]  # one per finished trial
    parent_run_id: str
    tracking_uri: str
    experiment_id: str
    output_dir: Path
    sweep_key: str
    seconds: float
    trial_seconds: float  # sum of the trials' own training time


def grid_cells(config: SweepConfig) -> list[dict[str, Any]]:
    """Every trial of the grid: source x R x nACS (or the centre fraction of R) x seed.

    Fraction masks (random, equispaced_fraction) have one centre fraction per R; the cell still names its
    number of centre lines (round(size x fraction)) so that tables and figures read the same way.
    """
    g = config.grid
    cells = []
    for source, r, seed in itertools.product(g.sources, g.accelerations, g.seeds):
        if g.mask == "equispaced":
            for n in g.num_acs_at.get(r, g.num_acs):
                cells.append({"source": source, "acceleration": r, "num_acs": n, "seed": seed})
        else:
            fraction = g.center_fractions[r]
            num_acs = round(config.data.size * fraction)
            cells.append(
                {"source": source, "acceleration": r, "num_acs": num_acs, "center_fraction": fraction,
                 "seed": seed}
            )  # fmt: skip
    cells = sorted(
        cells, key=lambda c: (g.sources.index(c["source"]), c["acceleration"], c["num_acs"], c["seed"])
    )
    if g.models:  # one cell per network: the comparison is made for each downstream model
        cells = [{**cell, "model": model} for model in g.models for cell in cells]
    return mixing_cells(config, cells)


def grid_sources(config: SweepConfig) -> list[str]:
    """The sources whose k-space the grid needs: its own, and gt's when mixing takes real patients."""
    return [
        *config.grid.sources,
        *(["gt"] if config.grid.real_fraction and "gt" not in config.grid.sources else []),
    ]


def _finish_stale_runs(tracker: Tracker, parent_id: str, trial_dirs: dict[str, Path]) -> None:
    """A driver killed after a trial wrote result.json but before MLflow heard of it: close the run."""
    for key, run in tracker.child_runs(parent_id).items():
        if key in trial_dirs and run.info.status == "RUNNING" and read_result(trial_dirs[key]) is not None:
            tracker.end_run(run.info.run_id, "FINISHED")


def _close_unfinished_runs(tracker: Tracker, parent_id: str, trial_dirs: dict[str, Path]) -> None:
    """A trial whose worker died (OOM, lost node) could not close its run: mark it FAILED; a rerun of
    the sweep resumes the trial and reopens the run."""
    for key, run in tracker.child_runs(parent_id).items():
        if key in trial_dirs and run.info.status == "RUNNING" and read_result(trial_dirs[key]) is None:
            lost = RuntimeError("trial did not finish; rerun the sweep to resume it")
            tracker.mark_failed(run.info.run_id, lost)


def _run_tune(
    config: SweepConfig,
    pending: list[dict[str, Any]],
    storage: Path | str,
    name: str,
    log_fn,
    refresh: Any = None,
) -> None:
    from ray import tune

    from phaselab.orchestration.progress import GridProgress
    from phaselab.orchestration.trial import tune_trial, tune_trial_distributed

    res = config.resources
    if res.workers_per_trial > 1:
        per_worker = {
            "cpus_per_worker": res.cpus_per_trial,
            "gpus_per_worker": res.gpus_per_trial,
            "custom_per_worker": dict(res.custom),
            "workers": res.workers_per_trial,
            "storage_path": str(storage),
        }
        pending = [{**cell, **per_worker} for cell in pending]
        trainable = tune.with_resources(tune_trial_distributed, {"cpu": 0.1})
    else:
        # Keys other than cpu/gpu are custom Ray resources (e.g. {"fake_gpu": 1}) in the trial's bundle.
        resources = {**res.custom, "cpu": res.cpus_per_trial, "gpu": res.gpus_per_trial}
        trainable = tune.with_resources(tune_trial, resources)
    tuner = tune.Tuner(
        trainable,
        param_space={"cell": tune.grid_search(pending)},
        tune_config=tune.TuneConfig(
            reuse_actors=True,
            max_concurrent_trials=res.max_concurrent_trials,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(storage),
            verbose=0,
            callbacks=[GridProgress(len(pending), log_fn), *([refresh] if refresh else [])],
            failure_config=tune.FailureConfig(max_failures=2),
        ),
    )
    tuner.fit()


def run_recon_grid(config: SweepConfig, log_fn: Callable[[str], None] | None = None) -> GridResult:
    """Run (or resume) the recon grid of ``config``; returns the finished trials' rows.

    ``log_fn`` receives progress lines (default: print); it must be picklable (Tune ships it).
    """
    from phaselab.orchestration.progress import say
    from phaselab.orchestration.report import log_grid_to_parent

    start = time.perf_counter()
    progress_fn, log_fn = log_fn, log_fn or say
    ctx = open_sweep(config, log_fn)
    tracker = ctx.tracker
    with tracker.closed_on_error(ctx.parent_id):  # an error or Ctrl-C: the parent run FAILED/KILLED
        ctx.shards = synthesize_sources(ctx, grid_sources(config), log_fn)
        evaluate_phase_sources(ctx, config.grid.sources, log_fn)  # each source's phase vs the acquired
        specs = {}
        for cell in grid_cells(config):
            trial_dir = ctx.sweep_dir / "trials" / cell_name(cell)
            spec = trial_spec(ctx, cell, trial_dir, shards=cell_shards(ctx, cell))
            specs[spec.trial_key] = spec
        trial_dirs = {k: Path(s.trial_dir) for k, s in specs.items()}
        _finish_stale_runs(tracker, ctx.parent_id, trial_dirs)
        pending = [
            {**s.cell, "trial_key": k, "spec_path": str(save_spec(s))}
            for k, s in specs.items()
            if read_result(s.trial_dir) is None
        ]
        done = len(specs) - len(pending)
        log_fn(f"grid: {len(specs)} trials, {done} already finished, {len(pending)} to run")
        if pending:
            storage = ctx.storage
            attempt = len(list(Path(storage).glob("grid-*"))) if Path(storage).exists() else 0
            from phaselab.orchestration.progress import GridRefresh

            refresh = GridRefresh(
                ctx.tracking_uri, config.tracking.experiment, ctx.parent_id, config, trial_dirs
            )
            _run_tune(config, pending, storage, f"grid-{attempt:03d}", progress_fn, refresh)
            _close_unfinished_runs(tracker, ctx.parent_id, trial_dirs)

        rows = [r for s in specs.values() if (r := read_result(s.trial_dir)) is not None]
        missing = len(specs) - len(rows)
        seconds = time.perf_counter() - start
        trial_seconds = sum(float(r.get("train_seconds", 0.0)) for r in rows)
        log_grid_to_parent(tracker, ctx.parent_id, rows, config)
        tracker.log_summary(
            ctx.parent_id,
            {
                "trials_finished": len(rows),
                "trials_failed": missing,
                "sweep_seconds": seconds,
                "trial_seconds": trial_seconds,
            },
        )
    tracker.end_run(ctx.parent_id, "FINISHED" if missing == 0 else "FAILED")
    if missing:
        log_fn(f"{missing} trial(s) did not finish; rerun the same command to retry them")
    return GridResult(
        rows,
        ctx.parent_id,
        ctx.tracking_uri,
        tracker.experiment_id,
        Path(config.output_dir).resolve(),
        ctx.key,
        seconds,
        trial_seconds,
    )
