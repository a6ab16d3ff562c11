"""One unit of synthesis work: one input volume -> one fastMRI single-coil file, the same in every worker.

An input is either a prepared volume (working size, acquired k-space: the grid's recTrain/recVal, whose
acquired phase the ``gt`` source reads) or a magnitude-only image volume from an archive (DICOM, NIfTI,
...). Either way the output holds k-space = fft2c(magnitude * e^{i phase}), the magnitude as
``reconstruction_esc``, the phase as ``phaselab_phase`` and what made it as ``phaselab_*`` attrs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from phaselab.data.fastmri_io import read_attrs, write_volume
from phaselab.data.magnitude import MagnitudeInput, read_magnitude_input, to_working_size
from phaselab.data.prepare import read_magnitude_and_phase
from phaselab.generators import PhaseSource
from phaselab.generators.trained import TrainedPhaseSource
from phaselab.mri.phase import synthesize_kspace
from phaselab.synthesis.sampling import sample_phase, slice_seed

SYNTHESIS_VERSION = 2  # 2: one writer for grid shards and archive volumes (same attrs)


@dataclass(frozen=True)
class VolumeTask:
    """One output file. ``name`` keys the slice seeds; the input is ``prepared`` or magnitude ``files``."""

    name: str
    output: str
    prepared: str | None = None
    files: tuple[str, ...] = ()
    format: str | None = None  # magnitude files: dicom, nifti, npy, png, tiff

    @classmethod
    def from_magnitude_input(cls, item: MagnitudeInput, out_dir: str | Path) -> VolumeTask:
        output = str(Path(out_dir) / f"{item.name}.h5")
        return cls(item.name, output, files=tuple(str(p) for p in item.files), format=item.source_format)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VolumeTask:
        return cls(**{**data, "files": tuple(data.get("files", ()))})

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "files": list(self.files)}


@dataclass(frozen=True)
class SynthesisSettings:
    """What every task of one synthesis shares. ``identity`` names the phase source (``SourceSpec.identity``
    plus the checkpoint path) and is written into every output, with the seed and the size."""

    seed: int = 0
    size: int | None = None  # magnitude inputs: working size (prepared volumes already have theirs)
    nifti_4d: str = "first"
    batch_size: int = 32
    input_dir: str | None = None  # magnitude inputs: file names are recorded relative to it
    identity: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthesisSettings:
        return cls(**data)


class _Input(NamedTuple):
    magnitude: torch.Tensor  # (S, H, W) float32 at the working size
    true_phase: torch.Tensor | None
    slices: list[int]  # which slices of the input these are (all-zero padding slices are dropped)
    patient_id: str
    attrs: dict[str, Any]


def _read_prepared(task: VolumeTask) -> _Input:
    magnitude, true_phase = read_magnitude_and_phase(task.prepared)
    patient = read_attrs(task.prepared).get("patient_id", Path(task.prepared).stem)
    slices = list(range(magnitude.shape[0]))
    return _Input(magnitude, true_phase, slices, str(patient), {"input": Path(task.prepared).name})


def _read_magnitude(task: VolumeTask, settings: SynthesisSettings) -> _Input:
    item = MagnitudeInput(task.name, tuple(Path(p) for p in task.files), task.format)
    volume = read_magnitude_input(item, nifti_4d=settings.nifti_4d)
    magnitude = to_working_size(volume.magnitude, settings.size)
    root = Path(settings.input_dir) if settings.input_dir else None
    files = [str(Path(p).relative_to(root)) if root else str(p) for p in task.files]
    slices = volume.meta.get("source_slices", list(range(magnitude.shape[0])))
    attrs = {
        "input": files[0] if len(files) == 1 else f"{Path(files[0]).parent}/ ({len(files)} files)",
        "input_files": files,
        "input_format": volume.source_format,
        "input_shape": volume.meta.get("input_shape"),
        "nifti_4d": settings.nifti_4d,
    }
    return _Input(magnitude, None, slices, str(volume.meta.get("patient") or volume.name), attrs)


def read_task_input(task: VolumeTask, settings: SynthesisSettings) -> _Input:
    """Read (and check) a task's input; DataError names the file on bad input."""
    if task.prepared is not None:
        return _read_prepared(task)
    if settings.size is None:
        raise ValueError("magnitude inputs need settings.size (the working size)")
    return _read_magnitude(task, settings)


def check_trained_size(source: PhaseSource, size: int, option: str = "--size") -> None:
    """ValueError if ``source`` is a generator trained on images of another size than ``size`` x ``size``
    (what it learned is tied to the pixel scale); baselines and old checkpoints (no recorded size) pass."""
    trained = source.trained_size if isinstance(source, TrainedPhaseSource) else None
    if trained is not None and int(size) != trained:
        raise ValueError(
            f"generator {source.name!r} was trained on {trained}x{trained} images; "
            f"use {option} {trained} (got {size})"
        )


def run_task(
    source: PhaseSource,
    task: VolumeTask,
    settings: SynthesisSettings,
    device: str = "cpu",
    extra_attrs: dict[str, Any] | None = None,
) -> Path:
    """Read the input, draw its phase (slice k with ``slice_seed(seed, task.name, k)``), write the output."""
    volume = read_task_input(task, settings)
    check_trained_size(source, volume.magnitude.shape[-1], "--size" if task.prepared is None else "data.size")
    seeds = [slice_seed(settings.seed, task.name, k) for k in volume.slices]
    phase = sample_phase(
        source,
        volume.magnitude,
        seeds,
        true_phase=volume.true_phase,
        batch_size=settings.batch_size,
        device=device,
    )
    kspace = synthesize_kspace(volume.magnitude, phase).to(torch.complex64)
    attrs = {
        **settings.identity,
        "seed": settings.seed,
        "size": int(volume.magnitude.shape[-1]),
        "source_slices": volume.slices,
        "synthesis_version": SYNTHESIS_VERSION,
        "device": str(device),
        **volume.attrs,
        **(extra_attrs or {}),
    }
    return write_volume(
        task.output,
        kspace.numpy(),
        patient_id=volume.patient_id,
        acquisition="synthetic",
        target=volume.magnitude.numpy().astype(np.float32),
        target_key="reconstruction_esc",
        extras={"phaselab_phase": phase.numpy().astype(np.float32)},
        extra_attrs=attrs,
    )


def output_record(path: str | Path) -> dict[str, Any]:
    """A written output as the manifest lists it (from its attrs, so finished outputs need no rerun)."""
    attrs = read_attrs(path)
    return {
        "output": Path(path).name,
        "patient_id": attrs.get("patient_id"),
        "input": attrs.get("phaselab_input"),
        "input_files": attrs.get("phaselab_input_files"),
        "format": attrs.get("phaselab_input_format", "prepared"),
        "input_shape": attrs.get("phaselab_input_shape"),
        "slices": len(attrs.get("phaselab_source_slices") or []),
    }
