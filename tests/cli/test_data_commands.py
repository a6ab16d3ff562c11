"""``phaselab data check|phantoms|split`` as a user runs them: exit codes, messages, no tracebacks."""

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from phaselab.cli import main
from phaselab.data.fastmri_io import write_volume

from ..data.conftest import MIXED_DIR_PROBLEMS as EXPECTED
from ..data.conftest import make_mixed_dir, random_kspace


@pytest.fixture
def mixed_dir(tmp_path) -> Path:
    return make_mixed_dir(tmp_path / "mixed")


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
    assert main(["data", "split", str(tmp_path / "empty"), "--out", str(out)]) == 2
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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--patients", "0"], "--patients: must be >= 1, got 0"),
        (["--size", "-5"], "--size: must be >= 32, got -5"),
        (["--slices", "two"], "--slices: expected an integer"),
    ],
)
def test_bad_phantom_arguments_are_one_line_usage_errors(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "phantoms", "--out", str(tmp_path / "p"), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "p").exists()


def test_phantoms_refuse_a_folder_holding_other_settings(tmp_path, capsys):
    folder = tmp_path / "phantoms"
    small = ["data", "phantoms", "--out", str(folder), "--patients", "3", "--slices", "1", "--size", "32"]
    assert main(small) == 0
    stamps = {p: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert main([*small[:-1], "64"]) == 2
    err = capsys.readouterr().err
    assert "3 phantom file(s) made with other settings" in err and "size" in err
    assert {p: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps  # nothing written
    assert main(small) == 0  # the same settings again: a cheap rerun


def test_split_of_too_few_patients_is_a_data_error(tmp_path, capsys):
    folder = tmp_path / "vols"
    for i in range(2):
        write_volume(folder / f"v{i}.h5", random_kspace((1, 4, 4), seed=i), patient_id=f"p{i}")
    assert main(["data", "split", str(folder), "--out", str(tmp_path / "s.json")]) == 2
    err = capsys.readouterr().err
    assert "2 patient(s); a split needs at least 5" in err and "Traceback" not in err
    assert not (tmp_path / "s.json").exists()


def test_help_texts_are_for_users(capsys):
    import argparse

    from phaselab.cli import build_parser

    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "phaselab grid" in top and "train-generator" in top and "synthesize" in top
    assert "Entry point" not in top and "argparse" not in top  # no developer docstrings

    def parsers(parser: argparse.ArgumentParser, path: str):
        yield path, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from parsers(child, f"{path} {name}")

    for path, parser in parsers(build_parser(), "phaselab"):
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{path}: option {action.option_strings[0]} has no help text"
    with pytest.raises(SystemExit):
        main(["grid", "--help"])
    text = capsys.readouterr().out
    assert "small runs" in text and "--config tiny" in text
