"""The simulated-cluster benchmark's arithmetic on a hand-made timeline (the run itself takes minutes)."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_simulated_cluster.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_simulated_cluster", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _trial(key: str, start: float, end: float, train: float) -> tuple[dict, dict]:
    span = {"kind": "trial", "label": key, "start": start, "end": end}
    row = {"trial_key": key, "began_at": 1000 + start, "ended_at": 1000 + end, "train_seconds": train}
    return span, row


def test_figures_of_two_slots_and_three_trials(bench):
    # synthesis 0..10 s, then two slots: a and b from 10 to 20, c from 21 to 31 (one slot idle meanwhile)
    trials = [_trial("a", 10, 20, 8), _trial("b", 10, 20, 8), _trial("c", 21, 31, 8)]
    summary = {
        "slots": 2,
        "wall_seconds": 31.0,
        "seconds_before_first_trial": 10.0,
        "slot_utilisation": 30 / 62,
        "slot_utilisation_while_trials_run": 30 / 42,
        "spans": [{"kind": "synthesis", "label": "gt", "start": 0.0, "end": 10.0}, *(s for s, _ in trials)],
    }
    tune = {"a": 10.5, "b": 10.5, "c": 10.5}
    f = bench.figures(summary, [r for _, r in trials], tune)
    assert f["trials"] == 3 and f["trial_phase_s"] == 21.0
    assert f["ideal_trial_phase_s"] == 15.0  # 30 trial-seconds on 2 slots
    assert f["idle_slot_seconds_per_trial"] == 4.0  # (2 x 21 - 30) / 3
    assert f["seconds_to_fill_all_slots"] == 0.0
    assert f["stage_seconds"]["synthesis"] == 10.0
    medians = f["per_trial_median_s"]
    assert medians["in_trial_overhead"] == 2.0 and medians["tune_minus_span"] == 0.5

    times, busy = bench.busy_curve([s for s, _ in trials], 31.0, 1.0)
    assert busy[times.index(15.0)] == 2 and busy[times.index(20.0)] == 0 and busy[times.index(25.0)] == 1
