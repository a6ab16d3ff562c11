"""Magnitude-only archive (DICOM, NIfTI, ...) + phase source -> one fastMRI single-coil file per volume."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from phaselab.data.errors import DataError
from phaselab.data.fastmri_io import read_attrs
from phaselab.data.magnitude import find_magnitude_inputs, read_magnitude_input
from phaselab.generators import PhaseSource
from phaselab.synthesis.manifest import write_manifest
from phaselab.synthesis.source_spec import SourceSpec
from phaselab.synthesis.tasks import SynthesisSettings, VolumeTask, check_trained_size, run_task

RESIZE = "centre crop to a square FOV, Fourier resize of the zero-phase image, modulus"
# Attrs that say which synthesis wrote a file: a rerun into the same folder must match them all.
IDENTITY_ATTRS = ("phase_source", "source_config", "checkpoint_sha256", "seed", "size", "nifti_4d")

# Runs tasks somewhere (in this process, or on Ray Data actors); returns the outputs it wrote.
Runner = Callable[[SourceSpec, list[VolumeTask], SynthesisSettings, Callable[[str], None]], list[Path]]


class BadInputs(DataError):
    """Some inputs are bad: ``errors`` holds one DataError per bad file (the message lists them all)."""

    def __init__(self, directory: str | Path, errors: list[DataError]):
        self.errors = list(errors)
        listing = "; ".join(str(err) for err in self.errors)
        super().__init__(directory, f"{len(self.errors)} bad input file(s): {listing}")


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


def synthesis_device(source: PhaseSource) -> str:
    """Networks sample on a GPU when there is one; baselines draw on the CPU."""
    return "cuda" if torch.cuda.is_available() and hasattr(source, "to") else "cpu"


def run_in_process(
    spec: SourceSpec, tasks: list[VolumeTask], settings: SynthesisSettings, log_fn: Callable[[str], None]
) -> list[Path]:
    """The default runner: every task in this process, one after the other."""
    source = spec.build()
    device = synthesis_device(source)
    if device != "cpu":
        source.to(device)
    written = []
    for k, task in enumerate(tasks, 1):
        tic = time.perf_counter()
        written.append(run_task(source, task, settings, device))
        log_fn(f"[{k}/{len(tasks)}] {task.name} -> {written[-1].name} ({time.perf_counter() - tic:.2f} s)")
    return written


def _finished(out: Path, identity: dict[str, Any]) -> bool:
    """True if an earlier run with the same settings finished ``out``; DataError if another synthesis
    (other source, seed, size, ...) wrote it."""
    if not out.exists():
        return False
    try:
        attrs = read_attrs(out)
    except DataError:
        return False  # writes are atomic, so this is a foreign or damaged file: write it again
    found = {key: attrs.get(f"phaselab_{key}") for key in IDENTITY_ATTRS}
    differ = [k for k in IDENTITY_ATTRS if json.dumps(found[k], default=str) != json.dumps(identity[k])]
    if differ:
        raise DataError(out, f"written by another synthesis ({', '.join(differ)} differ); use another --out")
    return True


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
    nifti_4d: str = "first",
    batch_size: int = 16,
    runner: Runner = run_in_process,
    log_fn: Callable[[str], None] = print,
) -> ArchiveResult:
    """Synthesize k-space for every magnitude volume under ``input_dir`` into ``out_dir`` (one .h5 each).

    Phase from ``source`` (a registry name, with ``source_config``) or a trained generator ``checkpoint``;
    a generator runs only at the ``size`` it was trained at (ValueError before anything is read otherwise).
    All pending inputs are read and checked first: with bad ones and not ``skip_bad`` nothing is written
    and :class:`BadInputs` lists them all; with ``skip_bad`` they are reported and left out. Outputs
    finished by an earlier run with the same settings are skipped. ``runner`` does the work (in this
    process by default; the Ray Data runner of ``phaselab.orchestration`` spreads it over GPUs). The
    manifest is :func:`manifest_path`.
    """
    input_dir, out_dir = Path(input_dir).resolve(), Path(out_dir).resolve()
    spec = SourceSpec(source, dict(source_config or {}), str(checkpoint) if checkpoint else None)
    phase_source = spec.build()
    if phase_source.name == "gt":
        raise ValueError("phase source 'gt' needs the acquired phase, which magnitude-only images lack")
    check_trained_size(phase_source, size)  # before anything is read or written
    identity = {**spec.identity(phase_source), "checkpoint": spec.checkpoint}
    settings = SynthesisSettings(seed, size, nifti_4d, batch_size, str(input_dir), identity)
    wanted = {**identity, "seed": seed, "size": size, "nifti_4d": nifti_4d}

    items, ignored = find_magnitude_inputs(input_dir)
    for path in ignored:
        log_fn(f"ignored {path} (not a supported image type)")
    outputs = {item.name: out_dir / f"{item.name}.h5" for item in items}
    finished = {name for name, out in outputs.items() if _finished(out, wanted)}
    pending = [item for item in items if item.name not in finished]
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
    todo = [VolumeTask.from_magnitude_input(i, out_dir) for i in pending if i.name not in bad_names]
    log_fn(
        f"synthesize {phase_source.name}: {len(items)} volume(s) in {input_dir}: {len(todo)} to write, "
        f"{len(finished)} done before, {len(bad)} bad"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in items:  # temp files of a killed earlier run (write_volume's naming) would confuse fastMRI
        for stale in out_dir.glob(f".{item.name}.h5.*.tmp"):
            stale.unlink()
    start = time.perf_counter()
    written = runner(spec, todo, settings, log_fn) if todo else []
    kept = [outputs[item.name] for item in items if item.name not in bad_names]
    manifest = write_manifest(
        out_dir,
        settings,
        kept,
        nifti_4d=nifti_4d,
        input_dir=str(input_dir),
        resize=RESIZE,
        bad=[{"path": str(err.path), "problem": err.problem} for err in bad],
        ignored=[str(p) for p in ignored],
        seconds=round(time.perf_counter() - start, 3),
    )
    skipped = [outputs[name] for name in outputs if name in finished]
    log_fn(
        f"synthesize {phase_source.name}: {len(written)} written, {len(skipped)} already done, "
        f"{len(bad)} bad skipped -> {out_dir} (manifest {manifest})"
    )
    return ArchiveResult(out_dir, manifest, kept, written, skipped, bad, ignored)
