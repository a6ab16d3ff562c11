"""The cluster configs pass Ray's own cluster-config validation (offline) and every repository file their
commands and file mounts use exists; the versions they pin match the ones phaselab is tested with."""

import copy
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ray = pytest.importorskip("ray")
from ray.autoscaler._private.util import prepare_config, validate_config  # noqa: E402  (private: ray pinned)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["ray_cluster.yaml", "ray_cluster.local.yaml"]
COMMAND_KEYS = [
    "initialization_commands",
    "setup_commands",
    "head_setup_commands",
    "worker_setup_commands",
    "head_start_ray_commands",
    "worker_start_ray_commands",
]
REMOTE_REPO = "~/phaselab"


def _raw(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def _commands(config: dict) -> list[str]:
    return [cmd for key in COMMAND_KEYS for cmd in config.get(key) or []]


@pytest.mark.parametrize("name", CONFIGS)
def test_ray_validates_the_cluster_config(name):
    prepared = prepare_config(copy.deepcopy(_raw(name)))
    validate_config(prepared)  # raises jsonschema.ValidationError / ValueError when invalid
    # Our setup replaced the provider defaults (the AWS ones would install a Ray nightly).
    commands = " ".join(_commands(prepared))
    assert "ray-wheels" not in commands and "nightly" not in commands
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_validator_rejects_a_broken_config():
    broken = _raw("ray_cluster.yaml")
    broken["available_node_types"]["gpu_worker"]["max_workers"] = "many"
    with pytest.raises(Exception, match="many"):
        validate_config(prepare_config(broken))


def test_aws_cluster_has_gpu_workers_and_a_private_mlflow_on_the_head():
    raw = _raw("ray_cluster.yaml")
    assert raw["provider"]["type"] == "aws"
    types = raw["available_node_types"]
    head, workers = types[raw["head_node_type"]], [t for n, t in types.items() if n != raw["head_node_type"]]
    assert head["resources"] == {"CPU": 0}  # no trials on the head
    gpu = [t for t in workers if re.match(r"(g5|g6|p4d|p5)\.", t["node_config"]["InstanceType"])]
    assert gpu and all(t["min_workers"] == 0 < t["max_workers"] for t in gpu)  # autoscaling from zero
    head_start = " ".join(raw["head_start_ray_commands"])
    assert "scripts/mlflow_server.sh start" in head_start
    assert "PHASELAB_MLFLOW_DB_URI=local" in head_start  # PostgreSQL on the head, not SQLite on EFS
    assert "postgresql" in " ".join(raw["head_setup_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start


def test_local_cluster_uses_the_onprem_provider():
    raw = _raw("ray_cluster.local.yaml")
    assert raw["provider"]["type"] == "local"
    assert raw["provider"]["head_ip"] and raw["provider"]["worker_ips"]
    assert "available_node_types" not in raw  # the local provider refuses them
    prepared = prepare_config(copy.deepcopy(raw))
    assert prepared["max_workers"] == len(raw["provider"]["worker_ips"])


@pytest.mark.parametrize("name", CONFIGS)
def test_mounted_and_referenced_repo_files_exist(name):
    raw = _raw(name)
    mounts = raw["file_mounts"]
    assert mounts, "the repository must be synced to the nodes"
    for remote, local in mounts.items():
        assert remote.startswith(f"{REMOTE_REPO}/"), remote
        assert local == "./" + remote.removeprefix(f"{REMOTE_REPO}/"), (remote, local)
        assert (ROOT / local).exists(), f"{name}: file_mounts source {local} does not exist"
    synced = [remote.removeprefix(f"{REMOTE_REPO}/") for remote in mounts]
    # Needed to pip install the package on the nodes.
    assert {"phaselab", "pyproject.toml", "README.md"} <= set(synced)

    referenced = set()
    for cmd in _commands(raw):
        referenced |= {
            m for m in re.findall(rf"{re.escape(REMOTE_REPO)}/([\w./-]+)", cmd) if not m.startswith(".venv")
        }  # the venv is made by bootstrap.sh
        if f"cd {REMOTE_REPO}" in cmd:  # relative paths after cd into the repo
            referenced |= set(re.findall(r"(?<![\w/~.])((?:scripts|sweeps)/[\w./-]+)", cmd))
    assert {"scripts/bootstrap.sh", "scripts/mount_shared.sh", "scripts/mlflow_server.sh"} <= referenced
    for path in referenced:
        assert (ROOT / path).exists(), f"{name}: commands use {path}, missing from the repository"
        assert any(path == s or path.startswith(s + "/") for s in synced), f"{name}: {path} is not synced"
        if path.endswith(".sh"):
            check = subprocess.run(["bash", "-n", str(ROOT / path)], capture_output=True, text=True)
            assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("name", CONFIGS)
def test_pinned_ray_matches_the_tested_version(name):
    pins = re.findall(r"ray\[[\w,]+\]==([\w.]+)", " ".join(_commands(_raw(name))))
    project_pin = re.search(r'"ray\[[\w,]+\]==([\w.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert pins and set(pins) == {project_pin} == {ray.__version__}


@pytest.mark.parametrize("name", CONFIGS)
def test_nothing_listens_on_all_interfaces(name):
    script = (ROOT / "scripts" / "mlflow_server.sh").read_text().splitlines()
    code = [line.split(" #")[0] for line in script if not line.lstrip().startswith("#")]
    for text in [*_commands(_raw(name)), *code]:
        assert "0.0.0.0" not in text, text


def test_max_workers_is_set_once():
    text = (ROOT / "ray_cluster.yaml").read_text()
    numbers = re.findall(r"^\s*max_workers:[^#\n]*\d", text, flags=re.M)
    assert len(numbers) == 1, numbers  # one number (an anchor); the node type refers to it
    raw = yaml.safe_load(text)
    assert raw["available_node_types"]["gpu_worker"]["max_workers"] == raw["max_workers"]
    bigger = yaml.safe_load(re.sub(r"&max_workers \d+", "&max_workers 64", text))
    assert bigger["max_workers"] == bigger["available_node_types"]["gpu_worker"]["max_workers"] == 64
    validate_config(prepare_config(bigger))
