"""The sweep commands as a user meets them: dry runs, a wrong data root, an interrupted sweep."""

import pytest

from phaselab.cli import main
from phaselab.tracking import Tracker


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
def test_an_interrupted_sweep_says_how_to_resume(ray_session, tmp_path, monkeypatch, capsys):
    from phaselab.orchestration import grid

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(grid, "_run_tune", interrupted)
    assert (
        main(["grid", "--config", "tiny", "--output-dir", str(tmp_path), "--ray-address", ray_session]) == 130
    )
    captured = capsys.readouterr()
    assert "run the same command again to resume" in captured.err
    assert "sweep finished" not in captured.out and "Tuner.restore" not in captured.out + captured.err
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "phaselab-recon-grid")
    (parent,) = tracker.find_runs({"phaselab.role": "parent"})
    assert parent.info.status == "KILLED"
