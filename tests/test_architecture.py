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


def test_every_source_and_doc_file_is_under_400_lines():
    """The project's rule for files people read (code, configs, docs); shipped test data is exempt."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    if not tracked:  # not a git checkout (an sdist): nothing to check
        return
    readable = (".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".txt", ".cfg")
    long = {}
    for name in tracked:
        path = ROOT / name
        if name.startswith("tests/data/") or not name.endswith(readable) or not path.exists():
            continue
        lines = len(path.read_text(errors="replace").splitlines())
        if lines >= 400:
            long[name] = lines
    assert not long, f"files of 400 lines or more: {long}"
