"""The recon grid driver: data -> splits -> per source: generator -> realism -> synthesis -> its VarNet
trials in the grid's one Tuner -> metric grid. Sources run at once on GPU clusters (each source's trials
start when its k-space is ready), in turn on CPUs (``resources.pipeline``; see ``pipeline``).

Resuming is by content: every trial is keyed by its own content and lives in ``<output>/trials/``, the
sweep's key (a hash of what determines its results) finds the MLflow parent run again by its tag.
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
from phaselab.orchestration.mixing import mixing_cells
from phaselab.orchestration.pipeline import (
    CellFeed,
    FeedSearcher,
    SourcePipeline,
    StopOnFailedSource,
    pipelined,
)
from phaselab.orchestration.storage import driver_lock, next_attempt
from phaselab.orchestration.sweep import open_sweep, sweep_key
from phaselab.orchestration.timeline import Timeline, log_timeline, trial_slots
from phaselab.orchestration.trial import read_result
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


def _close_unfinished_runs(tracker: Tracker, parent_id: str, trial_dirs: dict[str, Path]) -> None:
    """A trial whose worker died (OOM, lost node) could not close its run: mark it FAILED; a rerun of
    the sweep resumes the trial and reopens the run."""
    for key, run in tracker.child_runs(parent_id).items():
        if key in trial_dirs and run.info.status == "RUNNING" and read_result(trial_dirs[key]) is None:
            lost = RuntimeError("trial did not finish; rerun the sweep to resume it")
            tracker.mark_failed(run.info.run_id, lost)


def _run_tune(
    config: SweepConfig,
    cells: list[dict[str, Any]] | CellFeed,
    storage: Path | str,
    name: str,
    log_fn,
    refresh: Any = None,
) -> None:
    """One Tuner over the grid's trials: a fixed list of cells, or a ``CellFeed`` that hands out each
    source's cells once its k-space is ready (the pipelined grid)."""
    import ray
    from ray import tune

    from phaselab.orchestration.progress import GridProgress, say
    from phaselab.orchestration.resources import default_max_concurrent
    from phaselab.orchestration.trial import tune_trial, tune_trial_distributed

    feed = cells if isinstance(cells, CellFeed) else CellFeed(list(cells))
    res = config.resources
    extra: dict[str, Any] = {}
    if res.workers_per_trial > 1:
        extra = {
            "cpus_per_worker": res.cpus_per_trial,
            "gpus_per_worker": res.gpus_per_trial,
            "custom_per_worker": dict(res.custom),
            "workers": res.workers_per_trial,
            "storage_path": str(storage),
        }
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
        tune_config=tune.TuneConfig(
            search_alg=FeedSearcher(feed, extra),
            num_samples=max(1, feed.planned),  # at most; the feed says when it has handed out the last
            reuse_actors=True,
            max_concurrent_trials=max_concurrent,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(storage),
            verbose=0,
            stop=StopOnFailedSource(feed),
            callbacks=[GridProgress(feed, log_fn), *([refresh] if refresh else [])],
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
        cells = grid_cells(config)
        concurrent = pipelined(config)
        log_fn(
            "grid: pipelined, each source's trials start as soon as its k-space is ready"
            if concurrent
            else "grid: sources prepared in turn, trials start once every k-space is ready "
            "(resources.pipeline=true pipelines them; auto does when trials take GPUs)"
        )
        pipeline = SourcePipeline(
            ctx, grid_sources(config), config.grid.sources, cells, timeline, log_fn, concurrent=concurrent
        )
        pipeline.start()  # each source: generator, realism, synthesis; its cells join the feed when ready
        try:
            if pipeline.feed.wait_for_work():
                from phaselab.orchestration.progress import GridRefresh

                dirs, experiment = pipeline.feed.trial_dirs, config.tracking.experiment
                refresh = GridRefresh(ctx.tracking_uri, experiment, ctx.parent_id, config, dirs)
                storage = ctx.storage
                _run_tune(config, pipeline.feed, storage, next_attempt(storage, "grid"), progress_fn, refresh)
            pipeline.join()  # raises a source's error (its Stopper has ended the running trials)
        finally:
            specs = dict(pipeline.specs)
            _close_unfinished_runs(tracker, ctx.parent_id, {k: Path(s.trial_dir) for k, s in specs.items()})

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
