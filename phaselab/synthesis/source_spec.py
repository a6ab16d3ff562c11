"""A phase source by registry name (+ config) or by checkpoint: rebuilt anywhere, identified by content."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from phaselab.content_key import file_digest
from phaselab.generators import PhaseSource, create_phase_source, load_phase_source, phase_source_class


@dataclass(frozen=True)
class SourceSpec:
    """Enough to rebuild a phase source in a worker: ``name`` (+ ``config``) or a saved ``checkpoint``."""

    name: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        if (self.name is None) == (self.checkpoint is None):
            raise ValueError("give exactly one of a phase source name or a generator checkpoint")
        if self.name is not None and phase_source_class(self.name).requires_training:
            raise ValueError(f"phase source {self.name!r} must be trained: pass its checkpoint instead")

    def build(self) -> PhaseSource:
        if self.checkpoint is not None:
            return load_phase_source(self.checkpoint)
        return create_phase_source(self.name, **self.config)

    def identity(self, source: PhaseSource) -> dict[str, Any]:
        """What makes two syntheses the same: the source's name and resolved config, and the checkpoint's
        content (SHA-256), not its path or modification time."""
        return {
            "phase_source": source.name,
            "source_config": source.config,
            "checkpoint_sha256": file_digest(self.checkpoint) if self.checkpoint else None,
        }

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "config": dict(self.config), "checkpoint": self.checkpoint}
