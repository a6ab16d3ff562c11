"""Joining a cluster ships this working tree (Ray's runtime_env working_dir) without environments, caches
and outputs, so `ray submit` runs the code the user has; a local instance and the switch off do not."""

import zipfile
from types import SimpleNamespace

import pytest

from phaselab.orchestration import ray_runtime
from phaselab.orchestration.ray_runtime import cluster_runtime_env, init_ray, working_tree

ROOT = working_tree()


def test_the_working_tree_is_this_repository():
    assert ROOT is not None and (ROOT / "phaselab" / "orchestration" / "ray_runtime.py").is_file()


def test_cluster_env_ships_the_tree_without_outputs(tmp_path):
    env = cluster_runtime_env(True, exclude=[ROOT / "runs" / "knee", "s3://bucket/ray", tmp_path])
    assert env["working_dir"] == str(ROOT)
    assert {".venv", ".git", "**/__pycache__", "phaselab_runs", "mlflow.db"} <= set(env["excludes"])
    assert "runs/knee" in env["excludes"]  # an output folder inside the tree
    assert not any("bucket" in e or str(tmp_path) in e for e in env["excludes"])
    assert env["env_vars"] == ray_runtime.WORKER_ENV
    assert cluster_runtime_env(False) == {"env_vars": ray_runtime.WORKER_ENV}


def test_rays_packaging_with_the_excludes_keeps_the_code_and_drops_the_rest(tmp_path):
    from ray._private.runtime_env.packaging import create_package

    (ROOT / "phaselab_runs" / "x").mkdir(parents=True, exist_ok=True)
    marker = ROOT / "phaselab_runs" / "x" / "out.txt"
    marker.write_text("output")
    try:
        env = cluster_runtime_env(True)
        target = tmp_path / "pkg.zip"
        # without .gitignore (a user's may not list everything): the excludes alone keep the package small
        create_package(env["working_dir"], target, include_gitignore=False, excludes=env["excludes"])
        names = zipfile.ZipFile(target).namelist()
    finally:
        marker.unlink()
    assert "phaselab/orchestration/ray_runtime.py" in names and "pyproject.toml" in names
    for dropped in (".venv", ".git", "phaselab_runs", "__pycache__", ".ruff_cache", "mlruns"):
        assert not any(dropped in name.split("/") for name in names), dropped


@pytest.fixture
def fake_ray(monkeypatch):
    import ray

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 1})
    monkeypatch.setattr(ray, "nodes", lambda: [SimpleNamespace()])
    monkeypatch.setattr(ray_runtime.os, "environ", {})
    return calls


def test_init_ray_ships_the_tree_only_to_a_cluster(fake_ray):
    lines = []
    init_ray("auto", lines.append, ship_working_tree=True)
    assert fake_ray[-1]["address"] == "auto" and fake_ray[-1]["runtime_env"]["working_dir"] == str(ROOT)
    assert any("shipping the working tree" in line for line in lines)
    init_ray("auto", lines.append, ship_working_tree=False)
    assert "working_dir" not in fake_ray[-1]["runtime_env"]
    init_ray(None, lines.append, num_cpus=1, ship_working_tree=True)  # a local instance runs this tree
    assert fake_ray[-1]["address"] == "local" and "working_dir" not in fake_ray[-1]["runtime_env"]
