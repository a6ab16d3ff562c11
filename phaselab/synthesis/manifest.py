"""The manifest of a synthesized folder: what made it and what it holds, beside the folder, written last.

One format for the grid's k-space caches and for ``phaselab synthesize`` outputs. It lives beside the
folder (``<out>.manifest.json``), not in it, because fastMRI's SliceDataset opens every file of its root
as HDF5; it is written after every volume, so its presence marks the folder complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from phaselab.synthesis.tasks import SYNTHESIS_VERSION, SynthesisSettings, output_record


def manifest_path(out_dir: str | Path) -> Path:
    """``<out_dir>.manifest.json``, beside the folder."""
    out_dir = Path(out_dir)
    return out_dir.parent / f"{out_dir.name}.manifest.json"


def write_manifest(
    out_dir: str | Path,
    settings: SynthesisSettings,
    outputs: list[Path],
    **extra: Any,
) -> Path:
    """Atomically write the manifest of ``out_dir``: the settings (source identity, seed, size), one record
    per output (read back from its attrs) and ``extra`` (bad and ignored inputs, seconds, ...)."""
    path = manifest_path(out_dir)
    content = {
        "synthesis_version": SYNTHESIS_VERSION,
        "out_dir": str(Path(out_dir).resolve()),
        **settings.identity,
        "seed": settings.seed,
        "size": settings.size,
        "volumes": [output_record(p) for p in outputs],
        **extra,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(content, indent=1, default=str))
    os.replace(tmp, path)
    return path


def read_manifest(out_dir: str | Path) -> dict[str, Any] | None:
    """The manifest of ``out_dir``, or None while the folder is incomplete."""
    path = manifest_path(out_dir)
    return json.loads(path.read_text()) if path.exists() else None
