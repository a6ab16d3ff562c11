"""``phaselab synthesize`` as a user runs it: bad files listed, exit codes, nothing partial left behind."""

from phaselab.cli import main

from ..data.magnitude_files import bad_files, noise_png, phase_nifti, real_archive
from ..synthesis.tiny_gan import tiny_gan_checkpoint


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


def test_cli_lists_a_phase_map_and_a_noise_png_as_bad_and_writes_nothing(tmp_path, capsys):
    archive = real_archive(tmp_path / "archive")
    phase_nifti(archive / "coil_phase.nii")
    noise_png(archive / "scan_noise.png")
    out = tmp_path / "kspace"
    args = ["synthesize", "--input", str(archive), "--out", str(out), "--source", "smooth", "--size", "32"]
    assert main(args) == 1
    bad = [line for line in capsys.readouterr().out.splitlines() if line.startswith("BAD")]
    assert len(bad) == 2, bad
    assert bad[0].startswith(f"BAD {archive / 'coil_phase.nii'}: looks like a phase map (")
    assert bad[1].startswith(
        f"BAD {archive / 'scan_noise.png'}: looks like noise, not an MR magnitude image ("
    )
    assert all("% of adjacent pixels differ by more than half the intensity range" in line for line in bad)
    assert not out.exists()
    assert main([*args, "--skip-bad-files"]) == 0  # the real magnitudes still go through
    assert "wrote 2 volume(s), 0 already done, 2 bad file(s) skipped" in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*.h5")) == ["nibabel_example4d.h5", "pydicom_MR_small.h5"]


def test_cli_refuses_a_generator_at_another_size_than_it_was_trained_at(tmp_path, capsys):
    archive = real_archive(tmp_path / "archive")
    ckpt = tiny_gan_checkpoint(tmp_path / "gan.pt")  # trained at 32x32
    out = tmp_path / "kspace"
    args = ["synthesize", "--input", str(archive), "--out", str(out), "--checkpoint", str(ckpt)]
    assert main([*args, "--size", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: generator 'gan' was trained on 32x32 images; use --size 32 (got 64)"]
    assert not out.exists()
    assert main([*args, "--size", "32"]) == 0
    assert "wrote 2 volume(s)" in capsys.readouterr().out
