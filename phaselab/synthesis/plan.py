"""The grid's synthesis of one phase source: which shards to make, in a content-keyed cache folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from phaselab.content_key import config_hash
from phaselab.synthesis.manifest import manifest_path, write_manifest
from phaselab.synthesis.source_spec import SourceSpec
from phaselab.synthesis.tasks import SYNTHESIS_VERSION, SynthesisSettings, VolumeTask


@dataclass(frozen=True)
class SynthesisPlan:
    """One shard per prepared volume under ``out_dir``; complete once its manifest exists."""

    spec: SourceSpec
    settings: SynthesisSettings
    tasks: tuple[VolumeTask, ...]
    out_dir: Path

    @property
    def source_name(self) -> str:
        return self.settings.identity["phase_source"]

    @property
    def manifest_path(self) -> Path:
        return manifest_path(self.out_dir)

    def shards(self) -> list[Path]:
        return [Path(t.output) for t in self.tasks]

    def shard_path(self, prepared: str | Path) -> Path:
        return self.out_dir / f"{Path(prepared).stem}.h5"

    def pending(self) -> list[VolumeTask]:
        return [t for t in self.tasks if not Path(t.output).exists()]

    def is_complete(self) -> bool:
        return self.manifest_path.exists()

    def write_manifest(self, seconds: float) -> Path:
        return write_manifest(self.out_dir, self.settings, self.shards(), seconds=round(seconds, 2))


def plan_synthesis(
    spec: SourceSpec,
    inputs: list[str],
    cache_dir: str | Path,
    seed: int,
    dataset_key: str,
    batch_size: int = 32,
) -> SynthesisPlan:
    """Content-keyed folder: the same source (name, config, checkpoint content), inputs and seed give the
    same folder, so a rerun finds the shards instead of making them again."""
    source = spec.build()
    identity = {**spec.identity(source), "checkpoint": spec.checkpoint}
    key = config_hash(
        {
            **{k: v for k, v in identity.items() if k != "checkpoint"},
            "dataset": dataset_key,
            "inputs": sorted(Path(p).name for p in inputs),
            "seed": seed,
            "version": SYNTHESIS_VERSION,
        }
    )
    out_dir = Path(cache_dir) / f"synth-{source.name}-{key}"
    settings = SynthesisSettings(seed=seed, batch_size=batch_size, identity=identity)
    tasks = tuple(
        VolumeTask(Path(p).name, str(out_dir / f"{Path(p).stem}.h5"), prepared=str(p)) for p in inputs
    )
    return SynthesisPlan(spec, settings, tasks, out_dir)
