"""Magnitude-only archive (DICOM, NIfTI, ...) + phase source -> one fastMRI single-coil file per volume."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from phaselab.data.errors import DataError
from phaselab.data.fastmri_io import read_attrs, write_volume
from phaselab.data.magnitude import (
    MagnitudeInput,
    MagnitudeVolume,
    find_magnitude_inputs,
    read_magnitude_input,
    to_working_size,
)
from phaselab.generators import PhaseSource, create_phase_source, load_phase_source, phase_source_class
from phaselab.generators.base import synthesize_kspace
from phaselab.synthesis import SYNTHESIS_VERSION, slice_seed

RESIZE = "centre crop to a square FOV, Fourier resize of the zero-phase image, modulus"
# Attrs that say which synthesis wrote a file: a rerun into the same folder must match them all.
IDENTITY_ATTRS = ("phase_source", "source_config", "checkpoint_sha256", "seed", "size", "nifti_4d")


class BadInputs(DataError):
    """Some inputs are bad: ``errors`` holds one DataError per bad file (the message lists them all)."""

    def __init__(self, directory: str | Path, errors: list[DataError]):
        self.errors = list(errors)
        listing = "; ".join(str(err) for err in self.errors)
        super().__init__(directory, f"{len(self.errors)} bad input file(s): {listing}")


@dataclass(frozen=True)
class SourceSpec:
    """A phase source by registry name (+ config) or by checkpoint; enough to rebuild it in a worker."""

    name: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None

    def build(self) -> PhaseSource:
        if (self.name is None) == (self.checkpoint is None):
            raise ValueError("give exactly one of a phase source name or a generator checkpoint")
        if self.checkpoint is not None:
            source = load_phase_source(self.checkpoint)
        else:
            if phase_source_class(self.name).requires_training:
                raise ValueError(f"phase source {self.name!r} must be trained: pass its checkpoint instead")
            source = create_phase_source(self.name, **self.config)
        if source.name == "gt":
            raise ValueError("phase source 'gt' needs the acquired phase, which magnitude-only images lack")
        return source


def _sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(out_dir: str | Path) -> Path:
    """``<out_dir>.manifest.json`` beside the folder: the folder itself holds only .h5 files, because
    fastMRI's SliceDataset opens every file of its root as HDF5."""
    out_dir = Path(out_dir)
    return out_dir.parent / f"{out_dir.name}.manifest.json"


def _sample_phase(
    source: PhaseSource, magnitude: torch.Tensor, seeds: list[int], batch_size: int, device: str
) -> torch.Tensor:
    phases = []
    for start in range(0, magnitude.shape[0], batch_size):
        stop = start + batch_size
        with torch.no_grad():
            phase = source.sample(magnitude[start:stop].to(device), seed=seeds[start:stop])
        phases.append(phase.float().cpu())
    phase = torch.cat(phases)
    if phase.shape != magnitude.shape or not torch.isfinite(phase).all():
        raise RuntimeError(f"phase source {source.name!r} returned a bad phase {tuple(phase.shape)}")
    return phase


def synthesize_magnitude_volume(
    source: PhaseSource,
    volume: MagnitudeVolume,
    out_path: str | Path,
    *,
    size: int = 256,
    seed: int = 0,
    extra_attrs: dict[str, Any] | None = None,
    batch_size: int = 16,
    device: str = "cpu",
) -> Path:
    """Write one fastMRI single-coil file: k-space = fft2c(m * exp(i phase)), reconstruction_esc = m.

    ``m`` is the volume at the working size (:func:`to_working_size`); slice k's phase is drawn with
    ``slice_seed(seed, volume.name, original slice index)``, so it does not depend on batching, on
    workers, or on the all-zero slices that were dropped. The phase is stored as ``phaselab_phase``.
    """
    magnitude = to_working_size(volume.magnitude, size)
    source_slices = volume.meta.get("source_slices", list(range(magnitude.shape[0])))
    seeds = [slice_seed(seed, volume.name, i) for i in source_slices]
    phase = _sample_phase(source, magnitude, seeds, batch_size, device)
    kspace = synthesize_kspace(magnitude, phase).to(torch.complex64)
    attrs = {
        "phase_source": source.name,
        "source_config": source.config,
        "seed": seed,
        "size": size,
        "input_format": volume.source_format,
        "input_shape": volume.meta.get("input_shape"),
        "source_slices": source_slices,
        "synthesis_version": SYNTHESIS_VERSION,
        "device": device,
        **(extra_attrs or {}),
    }
    return write_volume(
        out_path,
        kspace.numpy(),
        patient_id=str(volume.meta.get("patient") or volume.name),
        acquisition="synthetic",
        target=magnitude.numpy(),
        target_key="reconstruction_esc",
        extras={"phaselab_phase": phase.numpy().astype(np.float32)},
        extra_attrs=attrs,
    )


def synthesize_input(
    source: PhaseSource, item: MagnitudeInput, out_dir: Path, settings: dict[str, Any], device: str
) -> Path:
    """Read one input and write its output (the step shared by the in-process loop and Ray workers)."""
    volume = read_magnitude_input(item, nifti_4d=settings["nifti_4d"])
    root = Path(settings["input_dir"])
    files = [str(p.relative_to(root)) for p in item.files]
    attrs = {
        "input": files[0] if len(files) == 1 else f"{Path(files[0]).parent}/ ({len(files)} files)",
        "input_files": files,
        "checkpoint": settings["checkpoint"],
        "checkpoint_sha256": settings["checkpoint_sha256"],
        "nifti_4d": settings["nifti_4d"],
    }
    return synthesize_magnitude_volume(
        source,
        volume,
        out_dir / f"{item.name}.h5",
        size=settings["size"],
        seed=settings["seed"],
        extra_attrs=attrs,
        batch_size=settings["batch_size"],
        device=device,
    )


@dataclass
class ArchiveResult:
    """What one run did: outputs in input order (written now or found), bad and ignored inputs."""

    out_dir: Path
    manifest: Path
    outputs: list[Path]
    written: list[Path]
    skipped: list[Path]
    bad: list[DataError]
    ignored: list[Path]


def _finished(out: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """Attrs of an output an earlier run finished, None if there is none; DataError if another synthesis
    (other source, seed, size, ...) wrote it."""
    if not out.exists():
        return None
    try:
        attrs = read_attrs(out)
    except DataError:
        return None  # writes are atomic, so this is a foreign or damaged file: write it again
    found = {key: attrs.get(f"phaselab_{key}") for key in IDENTITY_ATTRS}
    if json.dumps(found, sort_keys=True, default=str) != json.dumps(identity, sort_keys=True, default=str):
        differ = [k for k in IDENTITY_ATTRS if json.dumps(found[k], default=str) != json.dumps(identity[k])]
        raise DataError(out, f"written by another synthesis ({', '.join(differ)} differ); use another --out")
    return attrs


def _write_manifest(path: Path, content: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(content, indent=1, default=str))
    os.replace(tmp, path)


def synthesize_archive(
    input_dir: str | Path,
    out_dir: str | Path,
    source: str | None = None,
    *,
    checkpoint: str | Path | None = None,
    source_config: dict[str, Any] | None = None,
    size: int = 256,
    seed: int = 0,
    skip_bad: bool = False,
    use_ray: bool = False,
    nifti_4d: str = "first",
    batch_size: int = 16,
    log_fn: Callable[[str], None] = print,
) -> ArchiveResult:
    """Synthesize k-space for every magnitude volume under ``input_dir`` into ``out_dir`` (one .h5 each).

    Phase from ``source`` (a registry name, with ``source_config``) or a trained generator ``checkpoint``.
    All pending inputs are read and checked first: with bad ones and not ``skip_bad`` nothing is written
    and :class:`BadInputs` lists them all; with ``skip_bad`` they are reported and left out. Outputs
    finished by an earlier run with the same settings are skipped. ``use_ray`` spreads the volumes over
    Ray Data actors (one per GPU when there are GPUs). The manifest is :func:`manifest_path`.
    """
    input_dir, out_dir = Path(input_dir).resolve(), Path(out_dir).resolve()
    spec = SourceSpec(source, dict(source_config or {}), str(checkpoint) if checkpoint else None)
    phase_source = spec.build()
    device = "cuda" if torch.cuda.is_available() and hasattr(phase_source, "to") else "cpu"
    if device != "cpu":
        phase_source.to(device)
    settings = {
        "input_dir": str(input_dir),
        "size": int(size),
        "seed": int(seed),
        "nifti_4d": nifti_4d,
        "batch_size": int(batch_size),
        "checkpoint": spec.checkpoint,
        "checkpoint_sha256": _sha256(spec.checkpoint) if spec.checkpoint else None,
    }
    identity = {
        "phase_source": phase_source.name,
        "source_config": phase_source.config,
        "checkpoint_sha256": settings["checkpoint_sha256"],
        "seed": settings["seed"],
        "size": settings["size"],
        "nifti_4d": nifti_4d,
    }
    items, ignored = find_magnitude_inputs(input_dir)
    for path in ignored:
        log_fn(f"ignored {path} (not a supported image type)")
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in items:  # temp files of a killed earlier run (write_volume's naming) would confuse fastMRI
        for stale in out_dir.glob(f".{item.name}.h5.*.tmp"):
            stale.unlink()

    finished = {item.name: _finished(out_dir / f"{item.name}.h5", identity) for item in items}
    pending = [item for item in items if finished[item.name] is None]
    bad: list[DataError] = []
    bad_names: set[str] = set()
    for item in pending:  # check everything before writing anything
        try:
            read_magnitude_input(item, nifti_4d=nifti_4d)
        except DataError as err:
            bad.append(err)
            bad_names.add(item.name)
            log_fn(f"BAD {err}")
    if bad and not skip_bad:
        raise BadInputs(input_dir, bad)
    todo = [item for item in pending if item.name not in bad_names]
    log_fn(
        f"synthesize {phase_source.name}: {len(items)} volume(s) in {input_dir}: {len(todo)} to write, "
        f"{len(items) - len(pending)} done before, {len(bad)} bad"
    )

    start = time.perf_counter()
    if use_ray and todo:
        from phaselab.orchestration.archive_job import run_archive_synthesis

        written = run_archive_synthesis(todo, spec, out_dir, settings, log_fn=log_fn)
    else:
        written = []
        for k, item in enumerate(todo, 1):
            tic = time.perf_counter()
            written.append(synthesize_input(phase_source, item, out_dir, settings, device))
            log_fn(f"[{k}/{len(todo)}] {item.name} -> {written[-1].name} ({time.perf_counter() - tic:.2f} s)")

    outputs = [out_dir / f"{item.name}.h5" for item in items if item.name not in bad_names]
    volumes = []
    for out in outputs:
        attrs = read_attrs(out)
        volumes.append(
            {
                "output": out.name,
                "patient_id": attrs.get("patient_id"),
                "input_files": attrs.get("phaselab_input_files"),
                "format": attrs.get("phaselab_input_format"),
                "input_shape": attrs.get("phaselab_input_shape"),
                "slices": len(attrs.get("phaselab_source_slices") or []),
            }
        )
    manifest = manifest_path(out_dir)
    _write_manifest(
        manifest,
        {
            **{k: v for k, v in settings.items() if k != "batch_size"},
            **identity,
            "out_dir": str(out_dir),
            "resize": RESIZE,
            "synthesis_version": SYNTHESIS_VERSION,
            "volumes": volumes,
            "bad": [{"path": str(err.path), "problem": err.problem} for err in bad],
            "ignored": [str(p) for p in ignored],
            "seconds": round(time.perf_counter() - start, 3),
        },
    )
    skipped = [out_dir / f"{item.name}.h5" for item in items if finished[item.name] is not None]
    log_fn(
        f"synthesize {phase_source.name}: {len(written)} written, {len(skipped)} already done, "
        f"{len(bad)} bad skipped -> {out_dir} (manifest {manifest})"
    )
    return ArchiveResult(out_dir, manifest, outputs, written, skipped, bad, ignored)
