"""The pipelined study: every phase source goes through its own chain at once — its generator (trained
on its own Ray Train workers, found, or none), the realism check, the synthesis of each draw, its phase
metrics — and a source's VarNet trials join the grid's one Tuner as soon as its k-space exists, while
other sources still train or synthesize.

The chains are driver threads: each stage is a Ray job the driver only waits on (Ray Train, a Ray task,
Ray Data). The Tuner runs in the driver's main thread as before (so Ctrl-C, progress lines and resource
limits behave as for a fixed grid); its search algorithm is a ``CellFeed`` that hands out the cells whose
k-space is ready, says "not yet" while chains run, and "finished" once every cell was handed out — or at
once when a chain failed (an unrealistic generator, bad data), which also stops the running trials.
Syntheses take turns (one source at a time over every synthesis actor): two Ray Data pools asking for
the same GPUs would each wait for the other's actors.
"""

from __future__ import annotations

import collections
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ray.tune import Stopper
from ray.tune.search import Searcher

from phaselab.orchestration.mixing import cell_shards
from phaselab.orchestration.phase_eval import (
    PhaseReference,
    log_phase_results,
    phase_reference,
    say_if_fid_skipped,
    score_phase_source,
)
from phaselab.orchestration.source_kspace import checked_generator, synthesize_source
from phaselab.orchestration.sweep import SweepContext, trial_spec
from phaselab.orchestration.timeline import Timeline, trial_slots
from phaselab.orchestration.trial import TrialSpec, read_result, save_spec


def cell_needs(cell: dict[str, Any]) -> tuple[str, ...]:
    """The sources whose k-space a cell trains on: its own, and gt's for a real/synthetic mixture."""
    mixed = "real_fraction" in cell and cell["source"] != "gt"
    return (cell["source"], "gt") if mixed else (cell["source"],)


class CellFeed:
    """Cells ready to train, shared between the source chains (which add them) and the Tuner (which
    takes them). Pickles as an empty, closed feed: Tune saves its search algorithm and callbacks with
    the experiment, and a sweep resumes by content, never through ``Tuner.restore``."""

    def __init__(self, cells: list[dict[str, Any]] | None = None, *, planned: int | None = None):
        self._cells: collections.deque[dict[str, Any]] = collections.deque(cells or [])
        self._changed = threading.Condition()
        self.closed = cells is not None  # a fixed list needs no chains
        self.failed = False
        self.planned = len(self._cells) if planned is None else planned  # trials this sweep will run
        self.handed_out = 0
        self.running = 0  # trials handed out and not yet complete
        self.slots: int | None = None  # trials the cluster runs at once (None: as many as Ray fits)
        self.reserved = 0  # slots kept free for a synthesis in progress
        self.trial_dirs: dict[str, str] = {}  # every trial of the sweep so far (for the grid refresh)

    def __getstate__(self) -> dict[str, Any]:
        return {"planned": self.planned, "handed_out": self.handed_out, "trial_dirs": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__([], planned=state["planned"])
        self.handed_out = state["handed_out"]

    def add(self, cells: list[dict[str, Any]]) -> None:
        with self._changed:
            self._cells.extend(cells)
            self._changed.notify_all()

    def take(self) -> dict[str, Any] | None:
        """The next ready cell, unless the slots not reserved for a synthesis are all taken."""
        with self._changed:
            if self.failed or not self._cells:
                return None
            if self.slots is not None and self.running >= max(0, self.slots - self.reserved):
                return None  # a finished trial's slot goes to the synthesis actors first
            self.handed_out += 1
            self.running += 1
            return self._cells.popleft()

    def trial_complete(self) -> None:
        with self._changed:
            self.running = max(0, self.running - 1)

    @contextlib.contextmanager
    def reserve(self, slots: int) -> Iterator[None]:
        """Keep ``slots`` trial slots free while a synthesis runs: Ray has no priorities, and trials
        holding every GPU would starve the synthesis that the next source's trials wait for."""
        with self._changed:
            self.reserved = slots
        try:
            yield
        finally:
            with self._changed:
                self.reserved = 0

    @property
    def finished(self) -> bool:
        """Nothing more will come: a chain failed, or every source is ready and every cell handed out."""
        with self._changed:
            return self.failed or (self.closed and not self._cells)

    def close(self, *, failed: bool = False) -> None:
        with self._changed:
            self.closed = True
            self.failed = self.failed or failed
            self._changed.notify_all()

    def wait_for_work(self, poll: float = 0.5) -> bool:
        """Block until a cell is ready (True) or nothing will come (False). Ctrl-C still interrupts."""
        with self._changed:
            while not self._cells and not self.closed:
                self._changed.wait(poll)
            return bool(self._cells) and not self.failed


class FeedSearcher(Searcher):
    """Tune's search algorithm for a pipelined grid: one trial per cell the feed hands out."""

    def __init__(self, feed: CellFeed, extra: dict[str, Any] | None = None):
        super().__init__()
        self.feed, self.extra = feed, dict(extra or {})

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        cell = self.feed.take()
        if cell is not None:
            return {"cell": {**cell, **self.extra}}
        return Searcher.FINISHED if self.feed.finished else None  # None: Tune asks again in a second

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.feed.trial_complete()  # a grid learns nothing from a trial but that its slot is free

    def save(self, checkpoint_path: str) -> None:
        """What Tune's experiment state gets: the count handed out (a sweep resumes by content)."""
        Path(checkpoint_path).write_text(json.dumps({"handed_out": self.feed.handed_out}))

    def restore(self, checkpoint_path: str) -> None:
        pass  # never restored: a rerun of the sweep rebuilds the feed from the trials' folders


class StopOnFailedSource(Stopper):
    """Stops the running trials when a source's chain failed: the sweep ends with that error."""

    def __init__(self, feed: CellFeed):
        self.feed = feed

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.feed.failed


def finish_stale_runs(tracker: Any, parent_id: str, trial_dirs: dict[str, Path]) -> None:
    """A driver killed after a trial wrote result.json but before MLflow heard of it: close the run."""
    for key, run in tracker.child_runs(parent_id).items():
        if key in trial_dirs and run.info.status == "RUNNING" and read_result(trial_dirs[key]) is not None:
            tracker.end_run(run.info.run_id, "FINISHED")


def link_reused_trials(tracker: Any, parent_id: str, specs: dict[str, TrialSpec], log_fn) -> None:
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


def pipelined(config: Any) -> bool:
    """``resources.pipeline``; auto: when trials ask for GPUs or the cluster has some (an autoscaling
    cluster starts with no GPU node: the trials' request is what says where they will run). Ray must be
    initialized."""
    import ray

    if config.resources.pipeline != "auto":
        return bool(config.resources.pipeline)
    return config.resources.gpus_per_trial > 0 or ray.cluster_resources().get("GPU", 0) > 0


class SourcePipeline:
    """One daemon thread per source: generator -> realism -> synthesis -> (trials queued) -> phase
    metrics. ``join`` waits for every chain and raises the first chain's error.

    With ``concurrent=False`` one thread runs the chains one after another and the cells are released
    together once every source is ready: the stages before the trials, as on a CPU-only machine."""

    def __init__(
        self,
        ctx: SweepContext,
        sources: list[str],
        scored: list[str],
        cells: list[dict[str, Any]],
        timeline: Timeline,
        log_fn: Callable[[str], None],
        *,
        concurrent: bool = True,
    ):
        self.ctx, self.sources, self.scored, self.concurrent = ctx, sources, scored, concurrent
        self.timeline, self.log_fn = timeline, log_fn
        self.waiting = list(cells)  # cells whose k-space is not ready yet
        self.total = len(cells)
        self.feed = CellFeed(planned=len(cells))
        self.feed.slots = trial_slots(ctx.config)
        self.specs: dict[str, TrialSpec] = {}
        self.finished_before = 0
        self.phase_rows: dict[str, dict[str, Any]] = {}
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()  # ctx.shards, specs, the queue of waiting cells
        self._synthesis = threading.Lock()
        self._reference_lock = threading.Lock()
        self._reference: PhaseReference | None = None
        self._ready: set[str] = set()
        self._held: list[dict[str, Any]] = []  # ready cells kept back until every source is ready
        chains = (
            [(self._chain, (s,), f"source-{s}") for s in sources]
            if concurrent
            else [(self._chains_in_turn, (), "sources")]
        )
        self._threads = [threading.Thread(target=f, args=a, name=n, daemon=True) for f, a, n in chains]
        self._start = time.perf_counter()

    def start(self) -> SourcePipeline:
        if self.scored:
            say_if_fid_skipped(self.ctx, self.log_fn)
        for thread in self._threads:
            thread.start()
        return self

    def _chains_in_turn(self) -> None:
        for source in self.sources:
            if not self._chain(source):
                return

    def _chain(self, source: str) -> bool:
        """Prepare one source; False when it failed (the sweep stops)."""
        ctx, log_fn, timeline = self.ctx, self.log_fn, self.timeline
        try:
            choice = checked_generator(ctx, source, log_fn, timeline)
            seeds = list(ctx.config.grid.seeds)
            shards = synthesize_source(ctx, source, choice, seeds, log_fn, timeline, self._synthesis_turn)
            self._source_ready(source, shards)
        except BaseException as err:  # an unrealistic generator, bad data: the sweep stops with it
            self.errors.append(err)
            self.feed.close(failed=True)
            return False
        try:
            if source in self.scored:
                with timeline.stage("phase metrics", source):
                    row = score_phase_source(ctx, source, shards, self.reference(), log_fn)
                    self.phase_rows[source] = row
        except BaseException as err:  # raised once the trials are done: they do not depend on it
            self.errors.append(err)
        return True

    @contextlib.contextmanager
    def _synthesis_turn(self, actors: int) -> Iterator[None]:
        """One synthesis at a time, with as many trial slots kept free as it wants actors."""
        with self._synthesis, self.feed.reserve(actors):
            yield

    def reference(self) -> PhaseReference:
        with self._reference_lock:  # the acquired phase is read once, by the first chain that needs it
            if self._reference is None:
                self._reference = phase_reference(self.ctx)
            return self._reference

    def _source_ready(self, source: str, shards: dict[int, dict[str, list[str]]]) -> None:
        """Queue every waiting cell whose sources are all ready; trials an earlier sweep finished are
        linked under this parent run instead."""
        with self._lock:
            self.ctx.shards[source] = shards
            self._ready.add(source)
            ready = [c for c in self.waiting if set(cell_needs(c)) <= self._ready]
            self.waiting = [c for c in self.waiting if c not in ready]
            specs = {}
            for cell in ready:
                spec = trial_spec(self.ctx, cell, shards=cell_shards(self.ctx, cell))
                specs[spec.trial_key] = spec
            self.specs.update(specs)
            dirs = {k: Path(s.trial_dir) for k, s in specs.items()}
            self.feed.trial_dirs.update({k: str(d) for k, d in dirs.items()})
            tracker, parent = self.ctx.tracker, self.ctx.parent_id
            finish_stale_runs(tracker, parent, dirs)
            link_reused_trials(tracker, parent, specs, self.log_fn)
            pending = [
                {**s.cell, "trial_key": k, "spec_path": str(save_spec(s))}
                for k, s in specs.items()
                if read_result(s.trial_dir) is None
            ]
            self.finished_before += len(specs) - len(pending)
            self.feed.planned = self.total - self.finished_before
            if ready:
                self.log_fn(
                    f"grid: {source} k-space ready after {time.perf_counter() - self._start:.0f} s: "
                    f"{len(ready)} trial(s), {len(pending)} to run"
                )
            self._held.extend(pending)
            if self.concurrent or len(self._ready) == len(self.sources):
                self.feed.add(self._held)
                self._held = []
            if len(self._ready) == len(self.sources):
                self.log_fn(
                    f"grid: {self.total} trials, {self.finished_before} already finished, "
                    f"{self.total - self.finished_before} to run"
                )
                self.feed.close()

    def join(self) -> None:
        """Wait for every chain (phase metrics may still run after the last trial); raise the first
        error; log the phase metrics of the scored sources."""
        for thread in self._threads:
            while thread.is_alive():
                thread.join(0.5)  # a timeout keeps Ctrl-C working
        if self.errors:
            raise self.errors[0]
        rows = [self.phase_rows[s] for s in self.scored if s in self.phase_rows]
        if rows:
            with self.timeline.stage("phase metrics", "tables and figures"):
                log_phase_results(self.ctx, rows, self.reference())
