"""A throwaway PostgreSQL server for tests, started by the script the cluster head runs
(scripts/mlflow_db.sh): Debian's binaries, a fresh cluster in a temporary folder, 127.0.0.1 on a free port
and a private Unix socket only, a role and database with a password generated per run. The password lives
only in a 0600 pgpass file (libpq's PGPASSFILE); the URI carries none, so nothing prints it."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "mlflow_db.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    """Debian's newest PostgreSQL (/usr/lib/postgresql/<version>/bin), else the one on PATH."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1,
        reverse=True,
    )
    on_path = [Path(found).parent] if (found := shutil.which("pg_ctl")) else []
    for folder in [*debian, *on_path]:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


@dataclass(frozen=True)
class Postgres:
    uri: str  # postgresql://mlflow@127.0.0.1:<port>/mlflow: no password
    pgpass: Path  # 0600, for PGPASSFILE
    port: int
    folder: Path

    @property
    def env(self) -> dict[str, str]:
        return {"PGPASSFILE": str(self.pgpass)}

    def query(self, sql: str) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.uri, passfile=str(self.pgpass)) as conn, conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()


def _script(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=180
    )


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """Start a fresh PostgreSQL cluster; stop and delete it afterwards. Skips the test only when no
    PostgreSQL is installed (`.ci/run` installs Debian's `postgresql` package when it is missing)."""
    import psycopg  # noqa: F401  (the driver MLflow's server connects with: a dependency)

    binaries = postgres_bin()
    if binaries is None:
        pytest.skip("PostgreSQL not found: install it (apt-get install -y postgresql; .ci/run does)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root needs the postgres system user to run PostgreSQL as")
    # Not under pytest's tmp_path: as root the server runs as `postgres`, which cannot enter root's
    # private pytest folders; mlflow_db.sh gives this folder to that user.
    folder = Path(tempfile.mkdtemp(prefix="phaselab-pg-"))
    env = {
        **os.environ,
        "PHASELAB_PG_DIR": str(folder),
        "PHASELAB_PG_PORT": str(free_port()),
        "PHASELAB_PG_BIN": str(binaries),
        "PHASELAB_PG_BACKUP": str(folder / "no-backup" / "mlflow.dump"),  # never the real shared one
    }
    try:
        started = _script("start", env)
        assert started.returncode == 0, started.stdout + started.stderr
        pgpass = folder / "pgpass"
        assert pgpass.stat().st_mode & 0o077 == 0, "the password file must be private"
        uri = (folder / "uri").read_text().strip()
        yield Postgres(uri, pgpass, int(env["PHASELAB_PG_PORT"]), folder)
    finally:
        _script("stop", env)
        shutil.rmtree(folder, ignore_errors=True)
