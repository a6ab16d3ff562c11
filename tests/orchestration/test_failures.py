"""No MLflow run is left RUNNING when a trial or the sweep driver fails, and a corrupt input file is named
(or skipped with --skip-bad-files) instead of crashing the sweep."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from phaselab.data.phantoms import write_phantom_dataset
from phaselab.orchestration.grid import _close_unfinished_runs, run_recon_grid
from phaselab.orchestration.trial import TrialSpec, run_trial
from phaselab.tracking import ERROR, Tracker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantoms")
    return [str(p) for p in write_phantom_dataset(folder, patients=3, slices=2, size=32, kind="knee", seed=0)]


@pytest.fixture(scope="module")
def tracker(tmp_path_factory):
    """One database for the module (creating one costs seconds); each test has its own parent run."""
    folder = tmp_path_factory.mktemp("mlflow")
    return Tracker(f"sqlite:///{folder / 'mlflow.db'}", "failures", artifact_root=folder / "art")


@pytest.fixture
def parent_id(tracker, request):
    return tracker.parent_run(request.node.name, request.node.name)[0]


def _spec(tracker, parent_id, phantoms, trial_dir) -> TrialSpec:
    return TrialSpec(
        cell={"source": "gt", "acceleration": 4, "num_acs": 4, "seed": 0},
        trial_key="t1",
        trial_dir=str(trial_dir),
        train_shards=phantoms[:1],
        val_shards=phantoms[1:2],
        test_files=phantoms[2:],
        varnet={"cascades": 1, "chans": 4, "pools": 2},
        train={"lr": 1e-3, "batch_size": 2, "steps": 4, "eval_every": 2, "bf16": False, "grad_clip": None},
        tracking_uri=tracker.uri,
        experiment=tracker.experiment_name,
        parent_run_id=parent_id,
        resolved_config="{}",
    )


def _only_child(tracker, parent_id):
    children = tracker.find_runs({"mlflow.parentRunId": parent_id})
    assert len(children) == 1
    return children[0]


def test_failing_trial_is_failed_then_resumed_in_the_same_run(tracker, parent_id, phantoms, tmp_path):
    spec = _spec(tracker, parent_id, phantoms, tmp_path / "trial")

    def crash_after_first_checkpoint(metrics):
        raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError, match="worker lost"):
        run_trial(spec, tune_report=crash_after_first_checkpoint)
    failed = _only_child(tracker, parent_id)
    assert failed.info.status == "FAILED"
    assert failed.data.tags[ERROR] == "RuntimeError: worker lost"
    assert failed.data.tags["phaselab.hostname"]

    record = run_trial(spec)  # the retry continues from checkpoint.pt, in the same MLflow run
    resumed = _only_child(tracker, parent_id)
    assert resumed.info.run_id == failed.info.run_id == record["run_id"]
    assert resumed.info.status == "FINISHED" and ERROR not in resumed.data.tags
    steps = [m.step for m in tracker.client.get_metric_history(resumed.info.run_id, "val_ssim")]
    assert steps == [2, 4]


def test_failure_before_the_first_checkpoint_is_replaced_by_the_retry(tracker, parent_id, phantoms, tmp_path):
    good = _spec(tracker, parent_id, phantoms, tmp_path / "trial")
    bad = dataclasses.replace(good, val_shards=[str(tmp_path / "missing.h5")])
    with pytest.raises(Exception, match="missing.h5: file does not exist"):
        run_trial(bad)
    failed = _only_child(tracker, parent_id)
    assert failed.info.status == "FAILED" and "missing.h5" in failed.data.tags[ERROR]
    run_trial(good)
    retried = _only_child(tracker, parent_id)  # the empty failed run was replaced, not kept beside it
    assert retried.info.run_id != failed.info.run_id and retried.info.status == "FINISHED"


@pytest.mark.parametrize(("raised", "status"), [(KeyboardInterrupt, "KILLED"), (SystemExit, "RUNNING")])
def test_interrupted_trial_is_killed_but_a_tune_stop_is_left_to_the_caller(
    tracker, parent_id, phantoms, tmp_path, raised, status
):

    def interrupt(metrics):
        raise raised()

    with pytest.raises(raised):
        run_trial(_spec(tracker, parent_id, phantoms, tmp_path / "trial"), tune_report=interrupt)
    assert _only_child(tracker, parent_id).info.status == status


def test_runs_of_trials_that_died_are_closed(tracker, parent_id, tmp_path):
    lost = tracker.start_child(parent_id, "lost", "lost", {})
    done = tracker.start_child(parent_id, "done", "done", {})
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "result.json").write_text("{}")
    _close_unfinished_runs(tracker, parent_id, {"lost": tmp_path / "lost", "done": tmp_path / "done"})
    assert tracker.client.get_run(lost).info.status == "FAILED"
    assert tracker.client.get_run(done).info.status == "RUNNING"  # _finish_stale_runs' job, not this one


def test_failed_parent_run_is_reopened_by_a_rerun(tracker):
    parent_id, resumed = tracker.parent_run("rerun", "rerun")
    assert not resumed
    with pytest.raises(KeyboardInterrupt), tracker.closed_on_error(parent_id):
        raise KeyboardInterrupt
    run = tracker.client.get_run(parent_id)
    assert run.info.status == "KILLED" and run.data.tags[ERROR] == "KeyboardInterrupt: "
    again, resumed = tracker.parent_run("rerun", "rerun")
    run = tracker.client.get_run(parent_id)
    assert (again, resumed) == (parent_id, True)
    assert run.info.status == "RUNNING" and ERROR not in run.data.tags


@pytest.mark.ray
def test_interrupted_grid_marks_its_parent_run_killed(ray_session, tmp_path, monkeypatch):
    from phaselab.config import load_config
    from phaselab.orchestration import grid

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(grid, "_run_tune", interrupted)
    config = load_config("tiny", [f"output_dir={tmp_path}"])
    with pytest.raises(KeyboardInterrupt):
        run_recon_grid(config, log_fn=lambda _: None)
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", config.tracking.experiment)
    (parent,) = tracker.find_runs({"phaselab.role": "parent"})
    assert parent.info.status == "KILLED"


def _sweep(tmp_path, data_root, *extra):
    args = [
        sys.executable,
        str(ROOT / "sweeps" / "recon_grid.py"),
        "--data-root",
        str(data_root),
        "--output-dir",
        str(tmp_path / "out"),
        "--config",
        "tiny",
        *extra,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)


@pytest.mark.ray
@pytest.mark.slow  # 30-80 s on 2 cores: out of CI (python -m pytest -m slow)
def test_corrupt_file_is_named_then_skipped(ray_session, tmp_path):
    data = tmp_path / "knee"
    files = write_phantom_dataset(data, patients=8, slices=2, size=32, kind="knee", seed=0)
    bad = files[3]
    bad.write_bytes(bad.read_bytes()[:4000])  # a truncated download

    failed = _sweep(tmp_path, data)
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert f"{bad}: " in failed.stderr, failed.stderr  # "<file>: <what is wrong>"
    assert "--skip-bad-files" in failed.stderr and "Traceback" not in failed.stderr
    tracker = Tracker(f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}", "phaselab-recon-grid")
    (parent,) = tracker.find_runs({"phaselab.role": "parent"})
    assert parent.info.status == "FAILED" and bad.name in parent.data.tags[ERROR]

    skipped = _sweep(tmp_path, data, "--skip-bad-files", "--ray-address", ray_session)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "sweep finished" in skipped.stdout
    (manifest,) = (tmp_path / "out" / "cache").glob("prepared-*/dataset.json")
    used = {Path(p).name for split in json.loads(manifest.read_text())["splits"].values() for p in split}
    assert used == {f.name for f in files} - {bad.name}  # the seven good files, split by patient
    finished = [r for r in tracker.find_runs({"phaselab.role": "parent"}) if r.info.status == "FINISHED"]
    assert len(finished) == 1
