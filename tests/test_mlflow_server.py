"""A tiny sweep logging through an MLflow tracking server on 127.0.0.1, started with the same script the
cluster head runs (scripts/mlflow_server.sh), then read back through the server's REST API only."""

import json
import os
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from phaselab.config import load_config
from phaselab.orchestration.grid import run_recon_grid

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "mlflow_server.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """The server bound to 127.0.0.1 with a SQLite database and artifacts on "shared storage" in tmp."""
    port = _free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # mlflow, python
        "MLFLOW_HOST": "127.0.0.1",
        "MLFLOW_PORT": str(port),
        "PHASELAB_SHARED": str(tmp_path / "shared"),
        "MLFLOW_STATE_DIR": str(tmp_path / "state"),
        "MLFLOW_WORKERS": "1",
    }
    started = subprocess.run(
        ["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=120
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        url = f"http://127.0.0.1:{port}"
        assert (tmp_path / "state" / "tracking_uri").read_text().strip() == url
        yield url, tmp_path / "shared"
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=60)
    with pytest.raises(OSError):  # stopped: nothing listens any more
        urllib.request.urlopen(f"{url}/health", timeout=2)


def _get(url: str, endpoint: str, **params) -> dict:
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}/api/2.0/mlflow/{endpoint}?{query}", timeout=30) as response:
        return json.load(response)


def _post(url: str, endpoint: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{url}/api/2.0/mlflow/{endpoint}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def test_sweep_logs_through_tracking_server(ray_session, mlflow_server, tmp_path):
    url, shared = mlflow_server
    config = load_config("tiny", [f"output_dir={tmp_path / 'out'}", f"tracking.uri={url}"])
    result = run_recon_grid(config, log_fn=lambda _: None)
    assert len(result.rows) == 1 and result.tracking_uri == url

    experiment_id = _get(url, "experiments/get-by-name", experiment_name=config.tracking.experiment)[
        "experiment"
    ]["experiment_id"]
    runs = _post(url, "runs/search", {"experiment_ids": [experiment_id], "max_results": 100})["runs"]
    parents = [r for r in runs if _tags(r).get("phaselab.role") == "parent"]
    children = [r for r in runs if _tags(r).get("phaselab.role") == "trial"]
    assert len(parents) == 1 and len(children) == 1
    parent, child = parents[0], children[0]
    parent_id = parent["info"]["run_id"]
    assert parent_id == result.parent_run_id and parent["info"]["status"] == "FINISHED"
    assert _tags(child)["mlflow.parentRunId"] == parent_id
    assert child["info"]["status"] == "FINISHED"
    assert _tags(child)["phaselab.source"] == "gt" and _tags(child)["phaselab.node_id"]

    metrics = {m["key"]: m["value"] for m in child["data"]["metrics"]}
    assert 0.0 < metrics["test_ssim"] <= 1.0 and metrics["test_psnr"] > 0.0
    assert metrics["test_ssim"] == pytest.approx(result.rows[0]["test_ssim"])
    child_id = child["info"]["run_id"]
    history = _get(url, "metrics/get-history", run_id=child_id, metric_key="val_ssim")["metrics"]
    assert sorted(m["step"] for m in history) == [2, 4]
    parent_metrics = {m["key"]: m["value"] for m in parent["data"]["metrics"]}
    assert parent_metrics["trials_finished"] == 1.0

    # Artifacts go through the server's proxy into its artifact store on the shared storage.
    listed = _get(url, "artifacts/list", run_id=child_id, path="checkpoints")
    assert [f["path"] for f in listed["files"]] == ["checkpoints/best_model.pt"]
    assert child["info"]["artifact_uri"].startswith("mlflow-artifacts:")
    stored = list((shared / "mlflow" / "artifacts").rglob("best_model.pt"))
    assert len(stored) == 1 and stored[0].stat().st_size == listed["files"][0]["file_size"]
    assert (shared / "mlflow" / "mlflow.db").exists()
    top = {f["path"] for f in _get(url, "artifacts/list", run_id=parent_id)["files"]}
    assert {"config.yaml", "grid", "figures"} <= top
