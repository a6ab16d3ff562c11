"""Where sweeps keep their state: Ray results on a local folder or a URI (``s3://``, ``gs://``), and the
driver lock that keeps two drivers off one sweep.

Storage paths go through pyarrow's file systems, as Ray's own do: ``pathlib.Path("s3://bucket/x")``
is ``s3:/bucket/x``, a local folder that never exists.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path


class SweepBusy(RuntimeError):
    """Another driver is running this sweep."""


def is_uri(storage: str | Path) -> bool:
    return "://" in str(storage)


def entries(storage: str | Path) -> list[str]:
    """Names directly under ``storage`` (a folder or a URI); none when it does not exist yet."""
    import pyarrow.fs

    location = str(storage) if is_uri(storage) else os.path.abspath(storage)
    fs, path = pyarrow.fs.FileSystem.from_uri(location)
    found = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    return sorted(info.base_name for info in found)


def next_attempt(storage: str | Path, prefix: str) -> str:
    """``<prefix>-NNN``, one past the highest attempt already in ``storage`` (not a count: an attempt
    folder deleted by hand is not reused)."""
    numbers = [
        int(name[len(prefix) + 1 :])
        for name in entries(storage)
        if name.startswith(prefix + "-") and name[len(prefix) + 1 :].isdigit()
    ]
    return f"{prefix}-{max(numbers, default=-1) + 1:03d}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@contextlib.contextmanager
def driver_lock(sweep_dir: Path, resume_hint: str) -> Iterator[None]:
    """Hold ``<sweep_dir>/driver.lock`` while a driver runs the sweep: a second driver on the same sweep
    (the same command on another shell or node, with the shared output folder) is refused with who holds
    it, instead of training the same trials twice and numbering its Tune runs over the first one's.

    A lock left by a driver that died on this host (its pid is gone) is taken over; one from another
    host cannot be checked from here, and the message says how to release it.
    """
    sweep_dir.mkdir(parents=True, exist_ok=True)
    lock = sweep_dir / "driver.lock"
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(lock.read_text())
            except (OSError, ValueError):
                holder = {}
            if holder.get("host") == me["host"] and not _alive(int(holder.get("pid", -1))):
                lock.unlink(missing_ok=True)  # its driver died (killed, lost session): resume
                continue
            raise SweepBusy(
                f"{lock}: this sweep is being run by another driver (pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')} since {holder.get('started', '?')}). Wait for it, or follow it "
                f"in MLflow. If that driver is gone (its machine died), delete {lock} and rerun: "
                f"{resume_hint}"
            ) from None
        with os.fdopen(fd, "w") as out:
            json.dump(me, out)
        break
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if json.loads(lock.read_text()).get("pid") == me["pid"]:
                lock.unlink()
