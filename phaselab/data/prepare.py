"""Turn a dataset (phantoms or a fastMRI directory) into split, working-size, single-coil volumes, cached."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from phaselab.content_key import config_hash
from phaselab.data.check import check_directory
from phaselab.data.coils import compress_coils
from phaselab.data.errors import DataError
from phaselab.data.fastmri_io import list_volumes, read_volume, write_volume
from phaselab.data.splits import SplitManifest, split_patients
from phaselab.mri.fft import fft2c, ifft2c
from phaselab.mri.geometry import kspace_to_working_image

log = logging.getLogger(__name__)

PREPARE_VERSION = 1


@dataclass(frozen=True)
class PreparedDataset:
    """Working-size volumes by split; every path is a single-coil fastMRI file at size x size."""

    root: Path
    key: str
    splits: dict[str, list[str]]  # split name -> prepared file paths
    manifest_path: Path

    def files(self, split: str) -> list[Path]:
        return [Path(p) for p in self.splits[split]]


def _content_key(data_config: dict, sources: list[Path]) -> str:
    """The prepared dataset's key. The user's files are stamped by name, size and mtime; phantoms are a
    function of their config and PHANTOM_VERSION, so only their names count: the same preset gives the
    same key on every machine and cache (a checkpoint trained on it can say which data it was made for)."""
    if data_config.get("source") == "phantoms":
        from phaselab.data.phantoms import PHANTOM_VERSION

        stamp: list = [(p.name, PHANTOM_VERSION) for p in sources]
    else:
        stamp = [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in sources]
    return config_hash({"config": data_config, "files": stamp, "version": PREPARE_VERSION})


def phantom_folder(config, cache_dir: Path) -> Path:
    """Where the phantoms of ``config`` are cached: one folder per setting."""
    name = f"phantoms-{config.kind}-{config.size}px-{config.patients}x{config.slices}-seed{config.seed}"
    return cache_dir / name


def check_data_source(config) -> None:
    """Fail fast, before anything is started or logged, when the configured data cannot be read."""
    if config.source != "fastmri":
        return
    if config.root is None:
        raise DataError("data.root", "not set: pass --data-root DIR (a folder of fastMRI .h5 files)")
    list_volumes(config.root)  # DataError: missing, not a directory, or no .h5 files


def describe_data_source(config) -> str:
    """One line for dry runs: what the data are, and whether they can be read."""
    if config.source == "phantoms":
        return (
            f"phantoms: {config.patients} {config.kind} patients x {config.slices} slices at "
            f"{config.size} px (generated on first use, cached)"
        )
    try:
        check_data_source(config)
    except DataError as err:
        return f"fastMRI files: NOT READY: {err}"
    count = len(list_volumes(config.root))
    return f"fastMRI files: {count} .h5 file(s) in {config.root}, working size {config.size} px"


def raw_volumes(config, cache_dir: Path) -> tuple[list[Path], list[DataError]]:
    """The input files: phantoms generated (and cached) for the demo, or the user's fastMRI directory."""
    if config.source == "phantoms":
        from phaselab.data.phantoms import write_phantom_dataset

        files = write_phantom_dataset(
            phantom_folder(config, cache_dir),
            patients=config.patients,
            slices=config.slices,
            size=config.size,
            kind=config.kind,
            seed=config.seed,
        )
        return sorted(Path(f) for f in files), []
    check_data_source(config)
    files = list_volumes(config.root)
    bad = check_directory(config.root)
    if bad and not config.skip_bad_files:
        lines = "\n  ".join(str(err) for err in bad)
        raise DataError(
            config.root,
            f"{len(bad)} bad file(s) (pass --skip-bad-files, or set data.skip_bad_files=true, to leave "
            f"them out):\n  {lines}",
        )
    bad_paths = {err.path.resolve() for err in bad}
    for err in bad:
        log.warning("skipping bad file %s", err)
    return [f for f in files if f.resolve() not in bad_paths], bad


def _prepare_volume(source: Path, target: Path, config) -> None:
    volume = read_volume(source, load_target=False)
    kspace = torch.from_numpy(volume.kspace)
    attrs = {"phaselab_source_file": source.name}
    if volume.is_multicoil:
        kspace, info = compress_coils(kspace, method=config.coil_compression)
        attrs.update({f"phaselab_coil_{k}": v for k, v in info.items()})
    image = kspace_to_working_image(kspace, crop=(config.crop, config.crop), size=config.size)
    working_kspace = fft2c(image).to(torch.complex64).numpy()
    write_volume(
        target,
        working_kspace,
        patient_id=str(volume.attrs.get("patient_id", source.stem)),
        acquisition=str(volume.attrs.get("acquisition", "unknown")),
        target=np.abs(image.numpy()).astype(np.float32),
        target_key="reconstruction_esc",
        extra_attrs=attrs,
    )


def prepare_dataset(config, cache_dir: str | Path, log_fn=print) -> PreparedDataset:
    """Split by patient and write every volume at working size; a rerun with the same inputs is free."""
    cache_dir = Path(cache_dir)
    files, _ = raw_volumes(config, cache_dir)
    if not files:
        raise DataError(config.root or cache_dir, "no usable volumes")
    key = _content_key(asdict(config), files)
    root = cache_dir / f"prepared-{key}"
    done = root / "dataset.json"
    if done.exists():
        saved = json.loads(done.read_text())
        return PreparedDataset(root, key, saved["splits"], root / "splits.json")

    root.mkdir(parents=True, exist_ok=True)
    patient_files: dict[str, list[Path]] = {}
    for path in files:
        patient = str(read_volume(path, load_target=False).attrs.get("patient_id", path.stem))
        patient_files.setdefault(patient, []).append(path)
    manifest = split_patients(
        patient_files, seed=config.split_seed, fractions=config.fractions, kind=config.kind
    )
    manifest.to_json(root / "splits.json")

    prepared: dict[str, Path] = {}
    for i, path in enumerate(files, 1):
        target = root / "volumes" / path.name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            _prepare_volume(path, target, config)
        prepared[str(path)] = target
        if i % 20 == 0 or i == len(files):
            log_fn(f"prepared {i}/{len(files)} volumes at {config.size}x{config.size}")
    splits = {name: [str(prepared[str(f)]) for f in manifest.files(name)] for name in manifest.split_names()}
    tmp = done.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"key": key, "splits": splits}, indent=1))
    os.replace(tmp, done)
    return PreparedDataset(root, key, splits, root / "splits.json")


def read_magnitude_and_phase(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Magnitude and acquired phase (float32, (S, H, W)) of every slice of a prepared volume."""
    volume = read_volume(path, load_target=False)
    image = ifft2c(torch.from_numpy(volume.kspace))
    return image.abs().float(), torch.angle(image).float()


def count_slices(paths: list[str | Path]) -> int:
    """Slices in prepared volumes, from the k-space shapes alone (nothing is loaded)."""
    import h5py

    total = 0
    for path in paths:
        with h5py.File(path, "r") as hf:
            total += int(hf["kspace"].shape[0])
    return total


def load_manifest(prepared: PreparedDataset) -> SplitManifest:
    return SplitManifest.from_json(prepared.manifest_path)
