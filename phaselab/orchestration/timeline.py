"""Where a sweep spent its wall time: the driver's stages (generators, synthesis, phase metrics) and
every trial, as spans on one clock, drawn as a timeline on the parent run.

Trial slots (how many trials can run at once) come from the config; their utilisation is the share of
slot-seconds spent in trials between the sweep's start and end, so a user sees at once whether GPUs
idled while a generator trained or k-space was synthesized.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Span:
    kind: str  # "generator", "synthesis", "phase metrics", "trial", ...
    label: str
    start: float  # seconds since the epoch
    end: float


@dataclass
class Timeline:
    spans: list[Span] = field(default_factory=list)

    @contextlib.contextmanager
    def stage(self, kind: str, label: str) -> Iterator[None]:
        start = time.time()
        try:
            yield
        finally:
            self.spans.append(Span(kind, label, start, time.time()))

    def add_trials(self, rows: list[dict[str, Any]], since: float) -> None:
        """Trials that ran in this sweep (``began_at`` after ``since``: not reused from an earlier one)."""
        for row in rows:
            if row.get("began_at", 0.0) >= since and "ended_at" in row:
                cell = row["cell"]
                label = f"{cell['source']} R{cell['acceleration']} n{cell['num_acs']} s{cell['seed']}"
                self.spans.append(Span("trial", label, row["began_at"], row["ended_at"]))


def slot_utilisation(spans: list[Span], slots: int, start: float, end: float) -> float:
    """Share of the trial slots' time between ``start`` and ``end`` that trials used (0..1)."""
    busy = sum(max(0.0, min(s.end, end) - max(s.start, start)) for s in spans if s.kind == "trial")
    return busy / (slots * (end - start)) if end > start and slots > 0 else 0.0


def timeline_summary(timeline: Timeline, slots: int) -> dict[str, Any]:
    spans = sorted(timeline.spans, key=lambda s: s.start)
    if not spans:
        return {"spans": [], "slots": slots}
    start, end = spans[0].start, max(s.end for s in spans)
    trials = [s for s in spans if s.kind == "trial"]
    first_trial = min((s.start for s in trials), default=end)
    return {
        "slots": slots,
        "wall_seconds": end - start,
        "seconds_before_first_trial": first_trial - start,
        "slot_utilisation": slot_utilisation(spans, slots, start, end),
        "slot_utilisation_while_trials_run": slot_utilisation(spans, slots, first_trial, end),
        "spans": [{**asdict(s), "start": s.start - start, "end": s.end - start} for s in spans],
    }


def timeline_figure(summary: dict[str, Any]) -> Any:
    """One row per span (stages first, then trials in start order), bars on seconds since the start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spans = summary["spans"]
    kinds = list(dict.fromkeys(s["kind"] for s in spans))
    colours = {k: plt.get_cmap("tab10")(i) for i, k in enumerate(kinds)}
    height = min(0.22 * len(spans) + 1.5, 30)
    fig, ax = plt.subplots(figsize=(10, height))
    for row, span in enumerate(spans):
        ax.barh(row, span["end"] - span["start"], left=span["start"], color=colours[span["kind"]])
    ax.set_yticks(range(len(spans)), [f"{s['kind']}: {s['label']}" for s in spans], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the sweep started")
    ax.set_title(
        f"{summary['slots']} trial slot(s): {100 * summary.get('slot_utilisation', 0):.0f}% used over the "
        f"sweep, {100 * summary.get('slot_utilisation_while_trials_run', 0):.0f}% once trials started "
        f"({summary.get('seconds_before_first_trial', 0):.0f} s before the first trial)",
        fontsize=9,
    )
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[k]) for k in kinds]
    ax.legend(handles, kinds, loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def trial_slots(config: Any) -> int:
    """How many trials the cluster runs at once: ``max_concurrent_trials`` when set, else what Ray's
    resources allow per trial (GPUs when trials take GPUs, else CPUs). Ray must be initialized."""
    import ray

    res = config.resources
    if res.max_concurrent_trials:
        return int(res.max_concurrent_trials)
    total = ray.cluster_resources()
    workers = max(1, res.workers_per_trial)
    if res.gpus_per_trial > 0:
        return max(1, int(total.get("GPU", 0) // (res.gpus_per_trial * workers)))
    return max(1, int(total.get("CPU", 1) // (max(res.cpus_per_trial, 1e-3) * workers)))


def log_timeline(tracker: Any, run_id: str, timeline: Timeline, slots: int) -> dict[str, Any]:
    """``timeline/timeline.json`` and ``timeline/timeline.png`` on the parent run, and the utilisation
    as summary metrics."""
    import matplotlib.pyplot as plt

    summary = timeline_summary(timeline, slots)
    tracker.log_dict(run_id, summary, "timeline/timeline.json")
    if summary["spans"]:
        figure = timeline_figure(summary)
        tracker.log_figure(run_id, figure, "timeline/timeline.png")
        plt.close(figure)
        keys = ("slot_utilisation", "slot_utilisation_while_trials_run", "seconds_before_first_trial")
        tracker.log_summary(run_id, {k: summary[k] for k in keys})
    return summary
