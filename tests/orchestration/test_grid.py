"""The recon grid through Ray Tune and MLflow on CPU: run structure, metrics, artifacts, and resuming."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phaselab.config import load_config
from phaselab.orchestration.grid import grid_cells, run_recon_grid
from phaselab.tracking import Tracker

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]

TINY: list[str] = [  # on top of the tiny preset
    "train.steps=6",
    "train.eval_every=3",
]


def _tiny(tmp_path, *extra):
    return load_config("tiny", [*TINY, f"output_dir={tmp_path}", *extra])


def test_tiny_grid_logs_parent_and_children(ray_session, tmp_path):
    config = _tiny(tmp_path, "grid.sources=[gt, zero]")
    result = run_recon_grid(config, log_fn=lambda _: None)
    assert len(result.rows) == 2
    # the test masks are per volume, seeded by the file name, and the same for every source
    masks = {json.dumps(r["cell"]): r["effective_acceleration"] for r in result.rows}
    assert len(set(masks.values())) == 1

    tracker = Tracker(result.tracking_uri, config.tracking.experiment)
    parent = tracker.client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["phaselab.role"] == "parent"
    assert parent.data.metrics["trials_finished"] == 2
    children = tracker.child_runs(result.parent_run_id)
    assert len(children) == 2
    sources = sorted(run.data.tags["phaselab.source"] for run in children.values())
    assert sources == ["gt", "zero"]
    for run in children.values():
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == result.parent_run_id
        assert run.data.tags["phaselab.acceleration"] == "4"
        assert 0.0 < run.data.metrics["test_ssim"] <= 1.0
        assert 0.0 < run.data.metrics["test_zf_ssim"] <= 1.0
        assert run.data.params["varnet.cascades"] == "1"
        assert run.data.params["train.random_global_phase"] == "True"  # every augmentation is a logged param
        history = tracker.client.get_metric_history(run.info.run_id, "val_ssim")
        assert [m.step for m in history] == [3, 6]  # one per evaluation, none twice
        artifacts = {a.path for a in tracker.client.list_artifacts(run.info.run_id, "checkpoints")}
        assert artifacts == {"checkpoints/best_model.pt"}

    grid = tracker.load_json_artifact(result.parent_run_id, "grid/metric_grid_records.json")
    by_source = {row["source"]: row for row in grid}
    assert set(by_source) == {"gt", "zero", "zero_filled"}
    for row in result.rows:
        assert by_source[row["cell"]["source"]]["ssim_mean"] == pytest.approx(row["test_ssim"])
    top = {a.path for a in tracker.client.list_artifacts(result.parent_run_id)}
    assert {"config.yaml", "grid", "figures"} <= top
    figures = {a.path for a in tracker.client.list_artifacts(result.parent_run_id, "figures")}
    assert "figures/ssim_vs_R.png" in figures

    # every source's recTrain phase is scored against the acquired phase: gt is the acquired phase itself
    table = {
        row["source"]: row
        for row in tracker.load_json_artifact(result.parent_run_id, "phase_metrics/table.json")
    }
    assert set(table) == {"gt", "zero"}
    assert table["gt"]["phase_error"] == pytest.approx(0.0, abs=1e-6)
    assert table["zero"]["phase_error"] > 0.1
    assert (
        table["zero"]["gradient_w1_low"] <= table["zero"]["gradient_w1"] <= table["zero"]["gradient_w1_high"]
    )
    # what the MLflow UI shows: a model-training experiment with a description, described runs with short
    # names and plain column tags, one test value per run (step 0: bars, not one-dot lines), datasets,
    # and pictures of the reconstructions
    experiment = tracker.client.get_experiment(tracker.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "one child run per trial" in experiment.tags["mlflow.note.content"]
    assert "phaselab grid --config tiny" in parent.data.tags["mlflow.note.content"]
    assert parent.data.params["data.fractions.genTrain"] == "0.25"  # flattened, not a Python dict
    for run in children.values():
        cell = {k: run.data.tags[k] for k in ("source", "R", "nACS", "seed")}
        assert run.info.run_name == f"R4 n4 {cell['source']} s0" and cell["R"] == "4"
        assert run.data.tags["mlflow.note.content"].startswith(f"VarNet trained on **{cell['source']}**")
        assert [m.step for m in tracker.client.get_metric_history(run.info.run_id, "test_ssim")] == [0]
        inputs = tracker.client.get_run(run.info.run_id).inputs.dataset_inputs
        contexts = {i.tags[0].value: i.dataset.name for i in inputs}
        source = cell["source"]
        expected = {
            "training": f"recTrain-{source}",
            "validation": f"recVal-{source}",
            "test": "recTest-acquired",
        }
        assert contexts == expected
        pictures = {a.path for a in tracker.client.list_artifacts(run.info.run_id, "reconstructions")}
        assert pictures == {"reconstructions/test_slices.npz", "reconstructions/test_slices.png"}

    phase_runs = tracker.child_runs(result.parent_run_id, role="phase-metrics")
    by_name = {run.info.run_name: run for run in phase_runs.values()}
    assert by_name["phase-zero"].data.metrics["phase_w1"] == pytest.approx(table["zero"]["phase_w1"])


def _driver(tmp_path, address, *extra):
    args = [
        sys.executable,
        str(ROOT / "sweeps" / "recon_grid.py"),
        "--config",
        "tiny",
        "--ray-address",
        address,
        *[a for o in [*TINY, f"output_dir={tmp_path}", *extra] for a in ("--set", o)],
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.mark.slow  # 50-60 s on 2 cores: out of CI (python -m pytest -m slow)
def test_killed_sweep_resumes_without_rerunning_finished_trials(ray_session, tmp_path):
    sources = "grid.sources=[gt, zero, smooth]"
    extra = (sources, "resources.max_concurrent_trials=1", "train.steps=30", "train.eval_every=3")
    config = _tiny(tmp_path, *extra)
    trials_dir = tmp_path / "trials"

    first = _driver(tmp_path, ray_session, *extra)
    deadline = time.time() + 420
    while time.time() < deadline and len(list(trials_dir.glob("*/result.json"))) < 1:
        assert first.poll() is None, first.stdout.read()
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)  # the driver dies mid-grid, as with a lost SSH session
    first.wait()
    first.stdout.close()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in trials_dir.glob("*/result.json")}
    assert 1 <= len(finished) < 3

    second = _driver(tmp_path, ray_session, *extra)
    output, _ = second.communicate(timeout=400)
    assert second.returncode == 0, output
    assert f"{len(finished)} already finished" in output

    for name, mtime in finished.items():  # finished trials were not run again
        assert (trials_dir / name / "result.json").stat().st_mtime_ns == mtime
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", config.tracking.experiment)
    parents = tracker.find_runs({"phaselab.role": "parent"})
    assert len(parents) == 1
    children = tracker.find_runs({"mlflow.parentRunId": parents[0].info.run_id, "phaselab.role": "trial"})
    assert len(children) == len(grid_cells(config)) == 3  # each trial logged exactly once
    assert all(run.info.status == "FINISHED" for run in children)
    for run in children:
        steps = [m.step for m in tracker.client.get_metric_history(run.info.run_id, "val_ssim")]
        assert steps == sorted(set(steps)) == list(range(3, 31, 3))


@pytest.mark.slow  # 30-80 s on 2 cores: out of CI (python -m pytest -m slow)
def test_each_seed_trains_on_its_own_synthesis_draw(ray_session, tmp_path):
    config = _tiny(
        tmp_path, "grid.sources=[zero, smooth]", "grid.seeds=[0, 1]", "train.steps=2", "train.eval_every=2"
    )
    result = run_recon_grid(config, log_fn=lambda _: None)
    assert len(result.rows) == 4
    specs = {}
    for path in (tmp_path / "trials").glob("*/spec.json"):
        spec = json.loads(path.read_text())
        specs[spec["cell"]["source"], spec["cell"]["seed"]] = {
            Path(p).parent.name for p in spec["train_shards"]
        }
    # a stochastic source: seed s trains on draw s (the spread over seeds includes its sampling variance)
    assert specs["smooth", 0] != specs["smooth", 1]
    assert specs["zero", 0] == specs["zero", 1]  # zero phase is the same for every seed: synthesized once
    smooth_dirs = list((tmp_path / "cache" / "synthesis").glob("synth-smooth-*"))
    assert len([d for d in smooth_dirs if d.is_dir()]) == 2


def test_extending_a_finished_grid_trains_only_the_new_cells(ray_session, tmp_path):
    first = run_recon_grid(_tiny(tmp_path, "grid.sources=[gt, zero]"), log_fn=lambda _: None)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "trials").glob("*/result.json")}
    assert len(stamps) == 2
    lines = []
    config = _tiny(tmp_path, "grid.sources=[gt, zero, smooth]")
    second = run_recon_grid(config, log_fn=lines.append)
    assert "grid: 3 trials, 2 already finished, 1 to run" in lines
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # gt and zero were not trained again
    assert second.parent_run_id != first.parent_run_id and len(second.rows) == 3

    tracker = Tracker(second.tracking_uri, config.tracking.experiment)
    children = {run.data.tags["source"]: run for run in tracker.child_runs(second.parent_run_id).values()}
    assert set(children) == {"gt", "zero", "smooth"}  # the new parent shows the whole study
    originals = {r["cell"]["source"]: r["run_id"] for r in first.rows}
    for source in ("gt", "zero"):  # linked copies of the earlier runs: same values, a pointer back
        copy = children[source]
        assert copy.data.tags["phaselab.reused_from"] == originals[source]
        assert (
            copy.data.metrics["test_ssim"]
            == tracker.client.get_run(originals[source]).data.metrics["test_ssim"]
        )
        assert [m.step for m in tracker.client.get_metric_history(copy.info.run_id, "val_ssim")] == [3, 6]
    assert "phaselab.reused_from" not in children["smooth"].data.tags
    grid = tracker.load_json_artifact(second.parent_run_id, "grid/metric_grid_records.json")
    assert {row["source"] for row in grid} == {"gt", "zero", "smooth", "zero_filled"}
    timeline = tracker.load_json_artifact(second.parent_run_id, "timeline/timeline.json")
    trials = [span["label"] for span in timeline["spans"] if span["kind"] == "trial"]
    assert trials == ["smooth R4 n4 s0"]  # only what this sweep ran; the stages before it
    assert {"synthesis", "phase metrics"} <= {span["kind"] for span in timeline["spans"]}
    # without GPUs the sources are prepared in turn (resources.pipeline=auto): trials after every synthesis
    synthesis_end = max(s["end"] for s in timeline["spans"] if s["kind"] == "synthesis")
    assert all(s["start"] >= synthesis_end for s in timeline["spans"] if s["kind"] == "trial")
