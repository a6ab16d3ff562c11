"""``phaselab synthesize`` as a user runs it: bad files listed, exit codes, nothing partial left behind."""

from phaselab.cli import main

from ..data.magnitude_files import bad_files, real_archive


def test_cli_reports_bad_files_exits_nonzero_and_skips_on_request(tmp_path, capsys):
    archive = real_archive(tmp_path / "archive")
    expected = bad_files(archive)
    out = tmp_path / "kspace"
    args = ["synthesize", "--input", str(archive), "--out", str(out), "--source", "zero", "--size", "32"]
    assert main(args) == 1
    printed = capsys.readouterr().out
    for name, problem in expected.items():
        assert any(
            name in line and problem in line for line in printed.splitlines() if line.startswith("BAD")
        )
    assert "nothing written" in printed and not out.exists()
    assert main([*args, "--skip-bad-files"]) == 0
    assert "wrote 2 volume(s), 0 already done, 4 bad file(s) skipped" in capsys.readouterr().out
    assert main([*args, "--skip-bad-files"]) == 0
    assert "wrote 0 volume(s), 2 already done" in capsys.readouterr().out
    assert main([*args[:-4], "--source", "gt"]) == 2
    assert "needs the acquired phase" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert (
        main(["synthesize", "--input", str(tmp_path / "empty"), "--out", str(out), "--source", "zero"]) == 2
    )
    assert "empty directory" in capsys.readouterr().err
