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
from phaselab.orchestration.storage import driver_lock, next_attempt
from phaselab.orchestration.sweep import open_sweep, sweep_key, trial_spec
from phaselab.orchestration.timeline import Timeline, log_timeline, trial_slots
from phaselab.orchestration.trial import read_result, save_spec
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


def _link_reused_trials(tracker: Tracker, parent_id: str, specs: dict[str, Any], log_fn) -> None:
    """Trials an earlier sweep finished (an extended grid shares them) get a linked copy of their run
    under this sweep's parent, so the MLflow UI shows the whole study in one place."""
    children = tracker.child_runs(parent_id)
    reused = 0
    for key, spec in specs.items():
        result = read_result(spec.trial_dir)
        if result is None or key in children or result.get("run_id") is None:
            continue
        tracker.copy_run(result["run_id"], parent_id, key)
        reused += 1
    if reused:
        log_fn(f"grid: {reused} trial(s) reused from earlier sweeps (linked runs under this parent)")


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
    import ray
    from ray import tune

    from phaselab.orchestration.progress import GridProgress, say
    from phaselab.orchestration.resources import default_max_concurrent
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
    max_concurrent = default_max_concurrent(res, ray.cluster_resources())
    if res.max_concurrent_trials is None and max_concurrent is not None:
        (log_fn or say)(
            f"grid: at most {max_concurrent} multi-worker trial(s) at once, what the cluster holds now "
            "(resources.max_concurrent_trials sets it, e.g. for an autoscaling cluster that starts empty)"
        )
    tuner = tune.Tuner(
        trainable,
        param_space={"cell": tune.grid_search(pending)},
        tune_config=tune.TuneConfig(
            reuse_actors=True,
            max_concurrent_trials=max_concurrent,
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

    ``log_fn`` receives progress lines (default: print); it must be picklable (Tune ships it). One
    driver at a time per sweep: a second one is refused (``SweepBusy``) while the first runs.
    """
    sweep_dir = Path(config.output_dir).resolve() / "sweeps" / sweep_key(config)
    with driver_lock(sweep_dir, f"phaselab grid --config {config.name} --output-dir {config.output_dir}"):
        return _run_recon_grid(config, log_fn)


def _run_recon_grid(config: SweepConfig, log_fn: Callable[[str], None] | None) -> GridResult:
    from phaselab.orchestration.progress import say
    from phaselab.orchestration.report import log_grid_to_parent

    start, began = time.perf_counter(), time.time()
    progress_fn, log_fn = log_fn, log_fn or say
    ctx = open_sweep(config, log_fn)
    tracker = ctx.tracker
    with tracker.closed_on_error(ctx.parent_id):  # an error or Ctrl-C: the parent run FAILED/KILLED
        timeline = Timeline()
        ctx.shards = synthesize_sources(ctx, grid_sources(config), log_fn, timeline=timeline)
        with timeline.stage("phase metrics", "all sources"):  # each source's phase vs the acquired
            evaluate_phase_sources(ctx, config.grid.sources, log_fn)
        specs = {}
        for cell in grid_cells(config):
            spec = trial_spec(ctx, cell, shards=cell_shards(ctx, cell))
            specs[spec.trial_key] = spec
        trial_dirs = {k: Path(s.trial_dir) for k, s in specs.items()}
        _finish_stale_runs(tracker, ctx.parent_id, trial_dirs)
        _link_reused_trials(tracker, ctx.parent_id, specs, log_fn)
        pending = [
            {**s.cell, "trial_key": k, "spec_path": str(save_spec(s))}
            for k, s in specs.items()
            if read_result(s.trial_dir) is None
        ]
        done = len(specs) - len(pending)
        log_fn(f"grid: {len(specs)} trials, {done} already finished, {len(pending)} to run")
        if pending:
            storage = ctx.storage
            from phaselab.orchestration.progress import GridRefresh

            refresh = GridRefresh(
                ctx.tracking_uri, config.tracking.experiment, ctx.parent_id, config, trial_dirs
            )
            _run_tune(config, pending, storage, next_attempt(storage, "grid"), progress_fn, refresh)
            _close_unfinished_runs(tracker, ctx.parent_id, trial_dirs)

        rows = [r for s in specs.values() if (r := read_result(s.trial_dir)) is not None]
        missing = len(specs) - len(rows)
        seconds = time.perf_counter() - start
        trial_seconds = sum(float(r.get("train_seconds", 0.0)) for r in rows)
        log_grid_to_parent(tracker, ctx.parent_id, rows, config)
        timeline.add_trials(rows, since=began)
        log_timeline(tracker, ctx.parent_id, timeline, trial_slots(config))
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
