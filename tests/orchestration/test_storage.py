"""Sweep storage: attempt names through pyarrow file systems (local folders and URIs alike), and one
driver per sweep."""

import json
import os
import socket
import subprocess
import sys

import pytest

from phaselab.orchestration.storage import SweepBusy, driver_lock, entries, next_attempt


def test_attempts_count_past_the_highest_existing_one(tmp_path):
    storage = tmp_path / "ray_results"
    assert next_attempt(storage, "grid") == "grid-000"  # nothing there yet
    for name in ("grid-000", "grid-002", "search-abc", "grid-x"):
        (storage / name).mkdir(parents=True)
    assert next_attempt(storage, "grid") == "grid-003"  # not a count: grid-001 was deleted by hand
    assert next_attempt(f"file://{storage}", "grid") == "grid-003"  # a URI reads the same folder
    assert entries(f"file://{storage}") == ["grid-000", "grid-002", "grid-x", "search-abc"]


def test_a_uri_is_not_taken_for_a_local_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # pathlib would read s3://bucket/x as the local folder s3:/bucket/x; pyarrow asks S3 (no network
    # here: an error from S3, never a silent empty local listing)
    (tmp_path / "s3:" / "bucket" / "x" / "grid-000").mkdir(parents=True)
    with pytest.raises(OSError):
        entries("s3://bucket/x")


def test_a_second_driver_is_refused_while_the_first_holds_the_sweep(tmp_path):
    with driver_lock(tmp_path, "phaselab grid --config demo"):
        holder = json.loads((tmp_path / "driver.lock").read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        busy = rf"pid {os.getpid()} on .*delete .*driver.lock and rerun"
        with pytest.raises(SweepBusy, match=busy), driver_lock(tmp_path, "phaselab grid --config demo"):
            pass
    assert not (tmp_path / "driver.lock").exists()  # released


def test_the_lock_of_a_driver_that_died_on_this_host_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    stale = {"host": socket.gethostname(), "pid": int(dead.stdout), "started": "earlier"}
    (tmp_path / "driver.lock").write_text(json.dumps(stale))
    with driver_lock(tmp_path, "rerun"):
        assert json.loads((tmp_path / "driver.lock").read_text())["pid"] == os.getpid()
    # a lock from another host cannot be checked from here: refused, with how to release it
    (tmp_path / "driver.lock").write_text(json.dumps({**stale, "host": "other-node"}))
    with pytest.raises(SweepBusy, match="other-node"), driver_lock(tmp_path, "rerun"):
        pass
    assert (tmp_path / "driver.lock").exists()  # not removed by the refused driver
