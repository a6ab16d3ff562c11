"""The parent run's grid refreshed as trials finish, at most once per interval."""

import json

import phaselab.orchestration.report as report
from phaselab.orchestration.progress import GridRefresh


def _refresh(tmp_path, monkeypatch, interval):
    logged = []
    monkeypatch.setattr(
        report, "log_grid_to_parent", lambda tracker, parent, rows, config: logged.append(rows)
    )
    trial = tmp_path / "trial-a"
    trial.mkdir(exist_ok=True)
    (trial / "result.json").write_text(json.dumps({"cell": {"source": "gt"}, "test_ssim": 0.5}))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return GridRefresh(uri, "refresh", "parent", None, {"a": trial}, min_interval=interval), logged


def test_each_finished_trial_refreshes_the_grid_with_the_finished_rows(tmp_path, monkeypatch):
    refresh, logged = _refresh(tmp_path, monkeypatch, interval=0.0)
    refresh.on_trial_complete(0, [], None)
    refresh.on_trial_complete(1, [], None)
    assert logged == [[{"cell": {"source": "gt"}, "test_ssim": 0.5}]] * 2


def test_refreshes_closer_than_the_interval_are_skipped(tmp_path, monkeypatch):
    refresh, logged = _refresh(tmp_path, monkeypatch, interval=3600.0)
    for iteration in range(3):
        refresh.on_trial_complete(iteration, [], None)
    assert len(logged) == 1  # the first trial's; the sweep's end logs the final grid
