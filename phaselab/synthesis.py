"""Magnitude + phase source -> complex image -> k-space -> fastMRI HDF5 shards (one per input volume)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from phaselab.data.fastmri_io import read_volume, write_volume
from phaselab.generators.base import PhaseSource, synthesize_kspace
from phaselab.mri.fft import ifft2c

SYNTHESIS_VERSION = 1


def slice_seed(seed: int, volume_name: str, slice_index: int) -> int:
    """A per-slice seed that does not depend on batching or on which worker handles the slice."""
    digest = hashlib.sha256(f"{seed}:{volume_name}:{slice_index}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


def magnitude_and_phase(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Magnitude and acquired phase of every slice of a prepared (single-coil, working-size) volume."""
    volume = read_volume(path, load_target=False)
    image = ifft2c(torch.from_numpy(volume.kspace))
    return image.abs().float(), torch.angle(image).float()


def sample_phase(
    source: PhaseSource,
    magnitude: torch.Tensor,
    true_phase: torch.Tensor,
    seeds: list[int],
    batch_size: int = 32,
) -> torch.Tensor:
    """Phase for every slice, in batches, each slice drawn with its own seed."""
    out = []
    for start in range(0, magnitude.shape[0], batch_size):
        stop = start + batch_size
        out.append(
            source.sample(magnitude[start:stop], seed=seeds[start:stop], true_phase=true_phase[start:stop])
        )
    return torch.cat(out)


def synthesize_volume(
    source: PhaseSource,
    prepared: str | Path,
    shard: str | Path,
    seed: int,
    extra_attrs: dict[str, Any] | None = None,
    batch_size: int = 32,
) -> Path:
    """Write one shard: the prepared volume's magnitude with ``source``'s phase, as fastMRI k-space."""
    prepared = Path(prepared)
    magnitude, true_phase = magnitude_and_phase(prepared)
    seeds = [slice_seed(seed, prepared.name, i) for i in range(magnitude.shape[0])]
    phase = sample_phase(source, magnitude, true_phase, seeds, batch_size=batch_size)
    kspace = synthesize_kspace(magnitude, phase).to(torch.complex64).numpy()
    attrs = {
        "phaselab_phase_source": source.name,
        "phaselab_seed": seed,
        "phaselab_input": prepared.name,
        "phaselab_synthesis_version": SYNTHESIS_VERSION,
        **(extra_attrs or {}),
    }
    patient = read_volume(prepared, load_target=False).attrs.get("patient_id", prepared.stem)
    return write_volume(
        shard,
        kspace,
        patient_id=str(patient),
        acquisition="synthetic",
        target=magnitude.numpy().astype(np.float32),
        target_key="reconstruction_esc",
        extra_attrs=attrs,
        extras={"phaselab_phase": phase.numpy().astype(np.float32)},
    )


@dataclass(frozen=True)
class SynthesisPlan:
    """Which shards one synthesis job must produce, and the manifest that marks it complete."""

    source_name: str
    source_config: dict[str, Any]
    checkpoint: str | None  # trained generators: a saved PhaseSource; baselines: None
    inputs: tuple[str, ...]  # prepared volumes
    out_dir: Path
    seed: int

    def shard_path(self, prepared: str | Path) -> Path:
        return self.out_dir / f"{Path(prepared).stem}.h5"

    @property
    def manifest_path(self) -> Path:
        # Beside the folder, not in it: fastMRI's SliceDataset opens every file of its root as HDF5.
        return self.out_dir.with_name(self.out_dir.name + ".manifest.json")

    def pending(self) -> list[str]:
        return [p for p in self.inputs if not self.shard_path(p).exists()]

    def is_complete(self) -> bool:
        return self.manifest_path.exists()

    def write_manifest(self, extra: dict[str, Any] | None = None) -> None:
        shards = [str(self.shard_path(p)) for p in self.inputs]
        manifest = {
            "phase_source": self.source_name,
            "source_config": self.source_config,
            "checkpoint": self.checkpoint,
            "seed": self.seed,
            "synthesis_version": SYNTHESIS_VERSION,
            "shards": shards,
            **(extra or {}),
        }
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, self.manifest_path)

    def shards(self) -> list[Path]:
        return [self.shard_path(p) for p in self.inputs]


def plan_synthesis(
    source_name: str,
    source_config: dict[str, Any],
    checkpoint: str | None,
    inputs: list[str],
    cache_dir: str | Path,
    seed: int,
    dataset_key: str,
) -> SynthesisPlan:
    """Content-keyed output folder: same source, config, checkpoint, inputs and seed -> same folder."""
    from phaselab.config import config_hash

    ckpt_stamp = None
    if checkpoint:
        stat = Path(checkpoint).stat()
        ckpt_stamp = (Path(checkpoint).name, stat.st_size, int(stat.st_mtime))
    key = config_hash(
        {
            "source": source_name,
            "config": source_config,
            "checkpoint": ckpt_stamp,
            "dataset": dataset_key,
            "inputs": sorted(Path(p).name for p in inputs),
            "seed": seed,
            "version": SYNTHESIS_VERSION,
        }
    )
    out_dir = Path(cache_dir) / f"synth-{source_name}-{key}"
    return SynthesisPlan(source_name, source_config, checkpoint, tuple(inputs), out_dir, seed)
