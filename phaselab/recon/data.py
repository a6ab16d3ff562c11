"""Reconstruction datasets (k-space + magnitude target per slice), in memory or read lazily from fastMRI
files, and deterministic batching."""

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from phaselab.data.batching import batch_indices  # noqa: F401  (re-exported: recon's data order)
from phaselab.data.fastmri_io import read_volume
from phaselab.data.slice_files import SliceFiles
from phaselab.mri.phase import synthesize_kspace


class KspaceSlices(NamedTuple):
    """Single-coil slices for VarNet training or validation."""

    kspace: torch.Tensor  # complex64 (N, H, W), fully sampled
    target: torch.Tensor  # float32 (N, H, W), the magnitude image the network should recover
    volume: torch.Tensor  # int64 (N,), which volume each slice came from (sets the SSIM data range)

    @property
    def num_slices(self) -> int:
        return int(self.kspace.shape[0])

    @property
    def width(self) -> int:
        return int(self.kspace.shape[-1])

    def select(self, index: torch.Tensor | Sequence[int]) -> "KspaceSlices":
        index = torch.as_tensor(index, dtype=torch.long)
        return KspaceSlices(self.kspace[index], self.target[index], self.volume[index])

    def slice_max(self) -> torch.Tensor:
        """(N,) float32: each slice's target maximum."""
        return self.target.amax(dim=(-2, -1)).float()


class ShardSlices:
    """The slices of single-coil fastMRI files (one volume per file), read from disk a batch at a time:
    ``select`` returns the in-memory :class:`KspaceSlices` of one batch, the same values the stacked files
    would give (:func:`load_slices`), so training on either is identical. Nothing else stays in memory."""

    def __init__(self, paths: Sequence[str | Path]):
        self.files = SliceFiles(list(paths))
        self.volume = torch.from_numpy(self.files.file_of_slice)  # (N,) int64, the file index

    @property
    def num_slices(self) -> int:
        return len(self.files)

    @property
    def width(self) -> int:
        return int(self.files.slice_shape[-1])

    def select(self, index: torch.Tensor | Sequence[int]) -> KspaceSlices:
        index = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        if not len(index):
            shape = (0, *self.files.slice_shape)
            return KspaceSlices(torch.zeros(shape, dtype=torch.complex64), torch.zeros(shape), index)
        pairs = [self.files.read(int(i)) for i in index]
        kspace = torch.from_numpy(np.stack([k for k, _ in pairs]))
        target = torch.from_numpy(np.stack([t for _, t in pairs]))
        return KspaceSlices(kspace, target, self.volume[index])

    def slice_max(self) -> torch.Tensor:
        """(N,) float32: each slice's target maximum, read one volume at a time."""
        parts = [
            torch.from_numpy(self.files.volume_targets(i)).amax(dim=(-2, -1)).float()
            for i in range(len(self.files.paths))
        ]
        return torch.cat(parts) if parts else torch.zeros(0)


Slices = KspaceSlices | ShardSlices  # what the training loop trains and validates on


def load_slices(paths: Sequence[str | Path]) -> KspaceSlices:
    """Every slice of fastMRI files stacked in memory, volume ids by file (small data sets and tests; a
    trial reads its files lazily with :class:`ShardSlices`)."""
    kspace, target, volume = [], [], []
    for index, path in enumerate(paths):
        vol = read_volume(path, load_target=True, load_extras=False)
        kspace.append(torch.from_numpy(vol.kspace))
        target.append(torch.from_numpy(vol.target).float())
        volume.append(torch.full((vol.kspace.shape[0],), index, dtype=torch.int64))
    return KspaceSlices(torch.cat(kspace), torch.cat(target), torch.cat(volume))


def check_slices(slices: Slices) -> None:
    """Raise ValueError unless the three tensors agree in shape and dtype (files are checked when opened)."""
    if isinstance(slices, ShardSlices):
        if slices.num_slices == 0:
            raise ValueError("no slices")
        return
    k, t, v = slices
    if not k.is_complex() or k.ndim != 3:
        raise ValueError(f"kspace must be complex (N, H, W), got {tuple(k.shape)} {k.dtype}")
    if t.shape != k.shape or t.is_complex():
        raise ValueError(f"target must be real {tuple(k.shape)}, got {tuple(t.shape)} {t.dtype}")
    if v.shape != (k.shape[0],) or v.dtype != torch.int64:
        raise ValueError(f"volume must be int64 ({k.shape[0]},), got {tuple(v.shape)} {v.dtype}")
    if k.shape[0] == 0:
        raise ValueError("no slices")


def slices_from_images(
    magnitude: torch.Tensor, phase: torch.Tensor, volume: torch.Tensor | Sequence[int] | None = None
) -> KspaceSlices:
    """K-space of ``magnitude * exp(i phase)`` with the magnitude as target.

    ``volume`` defaults to one volume per slice, so each slice's SSIM data range is its own maximum.
    """
    kspace = synthesize_kspace(magnitude, phase)
    if volume is None:
        volume = torch.arange(magnitude.shape[0])
    slices = KspaceSlices(kspace, magnitude.float(), torch.as_tensor(volume, dtype=torch.int64))
    check_slices(slices)
    return slices


def concat_slices(parts: Sequence[KspaceSlices]) -> KspaceSlices:
    """Join datasets; volume ids are offset so volumes of different parts stay distinct."""
    offset, volumes = 0, []
    for part in parts:
        volumes.append(part.volume + offset)
        offset += int(part.volume.max()) + 1 if len(part.volume) else 0
    return KspaceSlices(
        torch.cat([p.kspace for p in parts]), torch.cat([p.target for p in parts]), torch.cat(volumes)
    )


def volume_max(slices: Slices) -> torch.Tensor:
    """Per-slice maximum of the slice's whole target volume (fastMRI's SSIM data range), (N,) float32."""
    slice_max = slices.slice_max()
    _, inverse = torch.unique(slices.volume, return_inverse=True)
    per_volume = torch.zeros(int(inverse.max()) + 1).scatter_reduce(
        0, inverse, slice_max, "amax", include_self=False
    )
    return per_volume[inverse]


def apply_column_masks(kspace: torch.Tensor, mask_columns: torch.Tensor) -> torch.Tensor:
    """Zero unsampled columns of (B, H, W) k-space; ``mask_columns`` is (W,) or one row per slice (B, W)."""
    keep = mask_columns.to(device=kspace.device, dtype=torch.bool).unsqueeze(-2)
    # where() rather than a product so that non-finite values in skipped columns are dropped too
    return torch.where(keep, kspace, torch.zeros((), dtype=kspace.dtype, device=kspace.device))
