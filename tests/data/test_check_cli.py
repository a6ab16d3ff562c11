import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from phaselab.cli import main
from phaselab.data.check import check_directory, load_volumes
from phaselab.data.errors import DataError
from phaselab.data.fastmri_io import write_volume

from .conftest import random_kspace, write_raw


@pytest.fixture
def mixed_dir(tmp_path) -> Path:
    """Two good volumes and four bad ones, each bad in a different way."""
    folder = tmp_path / "mixed"
    write_volume(folder / "good1.h5", random_kspace((2, 8, 8)), patient_id="p1")
    write_volume(folder / "good2.h5", random_kspace((2, 2, 8, 8)), patient_id="p2")
    write_raw(folder / "no_kspace.h5", reconstruction_esc=np.ones((1, 4, 4)))
    write_raw(folder / "flat.h5", kspace=random_kspace((8, 8)))
    nan = random_kspace((2, 4, 4))
    nan[1, 1, 1] = np.nan
    write_raw(folder / "nan.h5", kspace=nan)
    cut = write_volume(folder / "cut.h5", random_kspace((4, 32, 32)), patient_id="p3")
    cut.write_bytes(cut.read_bytes()[:3000])
    (folder / "README.txt").write_text("ignored: not .h5")
    return folder


EXPECTED = {
    "cut.h5": "truncated or corrupt",
    "flat.h5": "has 2 dims",
    "nan.h5": "1 NaN and 0 inf",
    "no_kspace.h5": "dataset 'kspace' missing",
}


def test_check_directory_reports_every_bad_file(mixed_dir):
    problems = check_directory(mixed_dir)
    assert sorted(err.path.name for err in problems) == sorted(EXPECTED)
    for err in problems:
        assert EXPECTED[err.path.name] in err.problem


def test_check_directory_reports_the_directory_itself(tmp_path):
    assert [e.problem for e in check_directory(tmp_path)] == ["empty directory: no .h5 files"]
    assert [e.problem for e in check_directory(tmp_path / "nope")] == ["directory does not exist"]


def test_load_volumes_raises_or_skips(mixed_dir, caplog):
    paths = sorted(mixed_dir.glob("*.h5"))
    with pytest.raises(DataError, match="cut.h5"):
        load_volumes(paths)
    volumes = load_volumes(paths, skip_bad=True)
    assert [v.path.name for v in volumes] == ["good1.h5", "good2.h5"]
    assert sum("skipping" in r.message for r in caplog.records) == 4


def test_cli_data_check(mixed_dir, tmp_path, capsys):
    assert main(["data", "check", str(mixed_dir)]) == 1
    out = capsys.readouterr().out
    for name, problem in EXPECTED.items():
        assert any(name in line and problem in line for line in out.splitlines())
    assert f"checked 6 file(s) in {mixed_dir}: 4 problem(s)" in out
    good = tmp_path / "good"
    write_volume(good / "a.h5", random_kspace((1, 4, 4)), patient_id="a")
    assert main(["data", "check", str(good)]) == 0
    assert "checked 1 file(s)" in capsys.readouterr().out
    assert main(["data", "check", str(tmp_path / "missing")]) == 1
    assert "directory does not exist" in capsys.readouterr().out


def test_console_script_check_exits_nonzero(mixed_dir):
    script = Path(sys.executable).parent / "phaselab"  # installed by `pip install -e .`
    command = [str(script)] if script.exists() else [sys.executable, "-m", "phaselab.cli"]
    result = subprocess.run(
        [*command, "data", "check", str(mixed_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stdout.count("BAD ") == 4 and "4 problem(s)" in result.stdout


def test_cli_data_split(tmp_path, capsys):
    folder = tmp_path / "vols"
    for i in range(7):
        write_volume(folder / f"v{i}.h5", random_kspace((1, 4, 4), seed=i), patient_id=f"p{i % 6}")
    out = tmp_path / "splits.json"
    assert main(["data", "split", str(folder), "--out", str(out), "--seed", "4"]) == 0
    assert "wrote split manifest" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["seed"] == 4 and data["kind"] == "knee"
    assert sorted(p for s in ("genTrain", "genVal", "genTest") for p in data["patients"][s]) == [
        f"p{i}" for i in range(6)
    ]
    assert main(["data", "split", str(tmp_path / "empty"), "--out", str(out)]) == 1
    assert "directory does not exist" in capsys.readouterr().err


def test_cli_data_phantoms_calls_the_phantom_writer(tmp_path, monkeypatch, capsys):
    calls = []

    def fake_writer(out_dir, **kwargs):
        calls.append((Path(out_dir), kwargs))
        return [Path(out_dir) / "a.h5", Path(out_dir) / "b.h5"]

    monkeypatch.setitem(
        sys.modules, "phaselab.data.phantoms", types.SimpleNamespace(write_phantom_dataset=fake_writer)
    )
    argv = ["data", "phantoms", "--out", str(tmp_path), "--patients", "3", "--slices", "2"]
    assert main([*argv, "--size", "64", "--kind", "brain", "--seed", "9"]) == 0
    assert calls == [(tmp_path, {"patients": 3, "slices": 2, "size": 64, "kind": "brain", "seed": 9})]
    assert "wrote 2 brain phantom volume(s)" in capsys.readouterr().out


def test_cli_requires_a_command():
    with pytest.raises(SystemExit):
        main([])
    with pytest.raises(SystemExit):
        main(["data"])


def test_cli_phantoms_check_split_end_to_end(tmp_path, capsys):
    pytest.importorskip("phaselab.data.phantoms")
    folder = tmp_path / "phantoms"
    argv = ["data", "phantoms", "--out", str(folder), "--patients", "6", "--slices", "2", "--size", "32"]
    assert main([*argv, "--kind", "knee", "--seed", "1"]) == 0
    assert main(["data", "check", str(folder)]) == 0
    assert main(["data", "split", str(folder), "--out", str(tmp_path / "s.json"), "--seed", "0"]) == 0
    assert "0 problem(s)" in capsys.readouterr().out
