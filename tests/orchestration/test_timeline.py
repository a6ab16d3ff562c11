"""The sweep timeline: stage and trial spans on one clock, and how much of the trial slots' time trials
used."""

import time

import pytest

from phaselab.orchestration.timeline import (
    Span,
    Timeline,
    slot_utilisation,
    timeline_figure,
    timeline_summary,
)


def _row(source, began, ended):
    cell = {"source": source, "acceleration": 4, "num_acs": 8, "seed": 0}
    return {"cell": cell, "began_at": began, "ended_at": ended}


def test_slot_utilisation_counts_trial_time_inside_the_window_only():
    spans = [
        Span("synthesis", "sbdm", 0.0, 50.0),  # not a trial: the slots idle meanwhile
        Span("trial", "a", 50.0, 100.0),
        Span("trial", "b", 50.0, 75.0),
        Span("trial", "c", 90.0, 130.0),  # 10 s of it after the window's end
    ]
    # two slots over 0..120 s: (50 + 25 + 30) / (2 * 120)
    assert slot_utilisation(spans, 2, 0.0, 120.0) == pytest.approx(105 / 240)
    assert slot_utilisation(spans, 2, 50.0, 50.0) == 0.0


def test_summary_is_relative_to_the_first_span_and_leaves_out_reused_trials():
    timeline = Timeline()
    timeline.spans.append(Span("generator", "sbdm", 1000.0, 1040.0))
    timeline.spans.append(Span("synthesis", "sbdm draw 0", 1040.0, 1060.0))
    rows = [_row("gt", 1060.0, 1100.0), _row("sbdm", 1060.0, 1080.0), _row("zero", 900.0, 950.0)]
    timeline.add_trials(rows, since=1000.0)  # zero finished in an earlier sweep: reused, not run
    summary = timeline_summary(timeline, slots=2)
    assert [s["label"] for s in summary["spans"] if s["kind"] == "trial"] == [
        "gt R4 n8 s0",
        "sbdm R4 n8 s0",
    ]
    assert summary["wall_seconds"] == 100.0 and summary["seconds_before_first_trial"] == 60.0
    assert summary["slot_utilisation"] == pytest.approx(60 / 200)
    assert summary["slot_utilisation_while_trials_run"] == pytest.approx(60 / 80)
    assert summary["spans"][0] == {"kind": "generator", "label": "sbdm", "start": 0.0, "end": 40.0}
    figure = timeline_figure(summary)
    assert len(figure.axes[0].patches) >= 4  # a bar per span (the legend adds its own)


def test_a_stage_is_recorded_even_when_it_raises():
    timeline = Timeline()
    with pytest.raises(RuntimeError), timeline.stage("synthesis", "gt"):
        time.sleep(0.01)
        raise RuntimeError("disk full")
    (span,) = timeline.spans
    assert span.kind == "synthesis" and span.end - span.start >= 0.01
