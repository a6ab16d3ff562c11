"""MLflow on PostgreSQL, as on the cluster head: a real PostgreSQL server (tests/postgres.py, started by
scripts/mlflow_db.sh) behind an MLflow server started by scripts/mlflow_server.sh on 127.0.0.1. A grid with
many trials logging at once records every trial's metrics exactly once; SIGKILLing the MLflow server
mid-sweep and restarting it loses nothing and logs nothing twice. Checked through MLflow and in the
database itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from phaselab.config import load_config
from phaselab.orchestration.grid import grid_cells, run_recon_grid
from tests.postgres import Postgres, free_port, running_postgres

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "mlflow_server.sh"
STEPS = [2, 4]  # the tiny preset evaluates at steps 2 and 4


@dataclass
class Server:
    url: str
    env: dict[str, str]
    state: Path
    shared: Path

    def start(self) -> None:
        started = subprocess.run(
            ["bash", str(SCRIPT), "start"], env=self.env, capture_output=True, text=True, timeout=240
        )
        assert started.returncode == 0, started.stdout + started.stderr
        assert "***" not in started.stdout and "warning" not in started.stderr, started.stderr

    def kill(self) -> None:
        """SIGKILL the whole server (its process group: uvicorn and its workers), no clean shutdown."""
        os.killpg(int((self.state / "server.pid").read_text()), signal.SIGKILL)

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=self.env, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def postgres():
    with running_postgres() as pg:
        yield pg


@pytest.fixture(scope="module")
def server(postgres: Postgres, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow_pg")
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # mlflow, python
        "MLFLOW_HOST": "127.0.0.1",
        "MLFLOW_PORT": str(port),
        "PHASELAB_SHARED": str(folder / "shared"),
        "MLFLOW_STATE_DIR": str(folder / "state"),
        "MLFLOW_WORKERS": "2",
        "PHASELAB_MLFLOW_DB_URI": postgres.uri,
        **postgres.env,
    }
    server = Server(f"http://127.0.0.1:{port}", env, folder / "state", folder / "shared")
    server.start()
    try:
        yield server
    finally:
        server.stop()
    log = (folder / "state" / "server.log").read_text()
    assert postgres.pgpass.read_text().split(":")[-1].strip() not in log  # the password never logged


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("out")  # shared: the second sweep reuses the first one's data


def _config(output_dir: Path, url: str, seeds: str):
    return load_config(
        "tiny",
        [
            f"output_dir={output_dir}",
            f"tracking.uri={url}",
            "grid.sources=[gt, zero]",
            f"grid.seeds={seeds}",
            "resources.cpus_per_trial=0.25",  # 8 trials at once on the tests' 2-CPU Ray
        ],
    )


def _check_sweep(result, config, postgres: Postgres) -> None:
    """Every cell: one child run, FINISHED, each metric step exactly once, its checkpoint stored."""
    from mlflow.tracking import MlflowClient

    cells = grid_cells(config)
    assert len(result.rows) == len(cells)
    client = MlflowClient(result.tracking_uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_finished"] == len(cells)
    children = client.search_runs(
        [result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}' "
        "and tags.`phaselab.role` = 'trial'", max_results=1000,
    )  # fmt: skip
    keys = sorted(r.data.tags["phaselab.trial_key"] for r in children)
    assert keys == sorted({row["trial_key"] for row in result.rows}), "one child run per cell"
    for run in children:
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "val_ssim")
        assert sorted(m.step for m in history) == STEPS, (run.info.run_name, history)
        assert 0.0 < run.data.metrics["test_ssim"] <= 1.0
        stored = [f.path for f in client.list_artifacts(run.info.run_id, "checkpoints")]
        assert stored == ["checkpoints/best_model.pt"]

    # The same in PostgreSQL itself: no extra run (not even a deleted one), no metric row twice.
    runs = postgres.query(
        "SELECT r.run_uuid, r.status, r.lifecycle_stage FROM runs r "
        "JOIN tags t ON t.run_uuid = r.run_uuid JOIN tags role ON role.run_uuid = r.run_uuid "
        f"WHERE t.key = 'mlflow.parentRunId' AND t.value = '{result.parent_run_id}' "
        "AND role.key = 'phaselab.role' AND role.value = 'trial'"
    )
    assert len(runs) == len(cells) and {(s, stage) for _, s, stage in runs} == {("FINISHED", "active")}
    ids = ", ".join(f"'{run_id}'" for run_id, _, _ in runs)
    twice = postgres.query(
        f"SELECT run_uuid, key, step, count(*) FROM metrics WHERE run_uuid IN ({ids}) "
        "GROUP BY run_uuid, key, step HAVING count(*) > 1"
    )
    assert twice == []
    per_run = postgres.query(
        f"SELECT run_uuid, count(*) FROM metrics WHERE key = 'val_ssim' AND run_uuid IN ({ids}) "
        "GROUP BY run_uuid"
    )
    assert sorted(n for _, n in per_run) == [len(STEPS)] * len(cells)


def test_concurrent_trials_log_each_metric_once(ray_session, postgres, server, output_dir):
    config = _config(output_dir, server.url, "[0, 1, 2, 3]")
    assert len(grid_cells(config)) == 8
    start = time.perf_counter()
    result = run_recon_grid(config, log_fn=lambda _: None)
    print(f"8-trial sweep through MLflow on PostgreSQL: {time.perf_counter() - start:.1f} s")
    _check_sweep(result, config, postgres)
    version = postgres.query("SELECT version_num FROM alembic_version")
    assert len(version) == 1  # MLflow created and migrated its schema in PostgreSQL


def test_mlflow_server_killed_and_restarted_mid_sweep(ray_session, postgres, server, output_dir):
    config = _config(output_dir, server.url, "[4, 5, 6, 7, 8, 9]")  # 12 trials, 8 at once
    cells = grid_cells(config)
    before = set(Path(output_dir).rglob("result.json"))
    seen: dict[str, float] = {}
    errors: list[BaseException] = []

    def kill_and_restart() -> None:
        try:
            deadline = time.monotonic() + 600
            while not (set(Path(output_dir).rglob("result.json")) - before):  # a first trial finished
                assert time.monotonic() < deadline, "no trial finished"
                time.sleep(0.1)
            seen["finished_at_kill"] = len(set(Path(output_dir).rglob("result.json")) - before)
            server.kill()
            killed = time.monotonic()
            time.sleep(2.0)
            server.start()
            seen["downtime"] = time.monotonic() - killed
        except BaseException as err:  # reported by the test below
            errors.append(err)

    watcher = threading.Thread(target=kill_and_restart, daemon=True)
    watcher.start()
    result = run_recon_grid(config, log_fn=lambda _: None)
    watcher.join(timeout=300)
    assert not errors, errors
    assert seen["finished_at_kill"] < len(cells), "the server must die mid-sweep"
    print(f"MLflow server down for {seen['downtime']:.1f} s after {seen['finished_at_kill']} trial(s)")
    _check_sweep(result, config, postgres)
