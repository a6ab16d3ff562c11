"""Content keys: stable hashes of configs and files, so a rerun finds what an earlier run made.

Nothing here imports phaselab: every layer may use it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any


def config_hash(obj: Any, length: int = 12) -> str:
    """Stable content key of a config (dataclass or JSON-able object): same content, same key."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex): the identity of a checkpoint wherever it was copied to."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
