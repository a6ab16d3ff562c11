"""The sweep commands as a user meets them: dry runs, a wrong data root, an interrupted sweep."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from phaselab.cli import main
from phaselab.tracking import Tracker

ROOT = Path(__file__).resolve().parents[2]


def test_paper_presets_preview_without_their_data(capsys):
    for preset in ("knee", "brain"):
        assert main(["grid", "--config", preset, "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "# grid: 180 trials" in out  # 5 sources x 4 R x 3 nACS x 3 seeds
        assert "data.root" in out and "NOT READY" in out and "--data-root" in out


def test_dry_run_checks_the_data_root(tmp_path, capsys):
    assert main(["grid", "--config", "knee", "--data-root", str(tmp_path / "nope"), "--dry-run"]) == 0
    assert f"NOT READY: {tmp_path / 'nope'}: directory does not exist" in capsys.readouterr().out


def test_a_missing_data_root_is_one_line_and_leaves_no_run(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["grid", "--config", "tiny", "--data-root", str(tmp_path / "nope"), "--output-dir", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"data error: {tmp_path / 'nope'}: directory does not exist"
    assert not (out / "mlflow.db").exists()  # no MLflow parent run was opened for a run that cannot start


def test_search_dry_runs_describe_the_search(capsys):
    assert main(["tune-generator", "--generator", "sbdm", "--samples", "3", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "# search: 3 Optuna trials of sbdm on genVal" in out
    assert "train.lr=loguniform(5e-05, 0.001)" in out and "object at 0x" not in out
    assert main(["tune-varnet", "--samples", "2", "--dry-run"]) == 0
    assert "cascades=choice([2, 4, 8, 12])" in capsys.readouterr().out
    assert main(["tune-generator", "--generator", "smooth", "--dry-run"]) == 2
    assert "choose a learned generator" in capsys.readouterr().err


@pytest.mark.ray
@pytest.mark.slow  # 30-80 s on 2 cores: out of CI (python -m pytest -m slow)
def test_ctrl_c_stops_the_sweep_and_says_how_to_resume(tmp_path):
    """A real SIGINT to a running sweep (a trial in flight): no Tune restore advice, no 'sweep finished',
    exit 130, the parent run KILLED; the rerun resumes."""
    argv = [sys.executable, str(ROOT / "sweeps" / "recon_grid.py"), "--config", "tiny"]
    argv += ["--output-dir", str(tmp_path), "--set", "grid.sources=[gt,zero]"]
    argv += ["--set", "resources.max_concurrent_trials=1", "--set", "train.steps=600"]
    argv += ["--set", "train.eval_every=50"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    driver = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    lines = []
    for line in driver.stdout:
        lines.append(line)
        if line.startswith("[1/2]"):  # the second trial has started
            driver.send_signal(signal.SIGINT)
            break
    output = "".join(lines) + driver.stdout.read()
    driver.stdout.close()
    assert driver.wait(timeout=120) == 130, output
    assert "run the same command again to resume" in output
    assert "sweep finished" not in output and "Tuner.restore" not in output and "Traceback" not in output
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "phaselab-recon-grid")
    (parent,) = tracker.find_runs({"phaselab.role": "parent"})
    assert parent.info.status == "KILLED"


@pytest.mark.ray
def test_the_grid_refuses_an_unrealistic_generator(ray_session, tmp_path, capsys):
    from phaselab.config import load_config
    from phaselab.generators import create_phase_source

    untrained = create_phase_source("sbdm", **load_config("tiny").generators["sbdm"].model)
    checkpoint = untrained.save(tmp_path / "untrained_sbdm.pt")
    argv = ["grid", "--config", "tiny", "--output-dir", str(tmp_path / "out"), "--ray-address", ray_session]
    argv += ["--set", "grid.sources=[gt,sbdm]", "--set", f"generators.sbdm.checkpoint={checkpoint}"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: refusing generator sbdm: UNREALISTIC: farther from the acquired phase")
    assert "feature_fd" in err and "--set generators.sbdm.allow_unrealistic=true" in err
    tracker = Tracker(f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}", "phaselab-recon-grid")
    (parent,) = tracker.find_runs({"phaselab.role": "parent"})
    assert parent.info.status == "FAILED" and parent.data.tags["phaselab.realism.sbdm"] == "UNREALISTIC"
    assert parent.data.metrics["realism_sbdm_pass"] == 0.0 and parent.data.metrics["realism_sbdm_score"] > 1
    assert not tracker.child_runs(parent.info.run_id)  # no VarNet trial ran
    assert not (tmp_path / "out" / "cache" / "synthesis").exists() or not any(
        p.name.startswith("synth-sbdm") for p in (tmp_path / "out" / "cache" / "synthesis").iterdir()
    )
