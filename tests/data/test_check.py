import pytest

from phaselab.data.check import check_directory, load_volumes
from phaselab.data.errors import DataError

from .conftest import MIXED_DIR_PROBLEMS as EXPECTED


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
