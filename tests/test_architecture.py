"""The layer rule of the package is written down where CI checks it, and covers every part of phaselab."""

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import phaselab

ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> list[dict]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["importlinter"]["contracts"]


def test_the_layers_contract_names_every_top_level_module():
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    named = [m.strip() for layer in layers["layers"] for m in layer.replace(":", "|").split("|")]
    top = {f"phaselab.{m.name}" for m in pkgutil.iter_modules(phaselab.__path__)}
    assert len(named) == len(set(named)), "a module sits in two layers"
    assert set(named) == top, "a top-level module of phaselab is missing from the layers contract"


def test_every_package_imports_on_its_own():
    """A package imported first in a fresh interpreter must not trip over an import cycle."""
    packages = [f"phaselab.{m.name}" for m in pkgutil.iter_modules(phaselab.__path__)]
    for package in packages:
        command = [sys.executable, "-c", f"import {package}"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{package}: {result.stderr[-2000:]}"
