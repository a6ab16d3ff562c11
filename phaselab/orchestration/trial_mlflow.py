"""How a grid trial presents itself in MLflow: a short name that keeps R and nACS visible, tags and params
the runs table can show as columns, a description, the datasets it used, and pictures of what it did
(a fixed few test reconstructions, as arrays for ``analysis/`` and as an image)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from phaselab.content_key import config_hash
from phaselab.data.fastmri_io import read_attrs
from phaselab.recon.evaluate import reconstruct_volume
from phaselab.tracking import Tracker

RECONSTRUCTIONS = "reconstructions/test_slices.npz"  # read by analysis/ (the studies' Figs 6-8)


def short_name(cell: dict[str, Any]) -> str:
    """``R6 n8 sinusoid s0``: the UI cuts names after ~14 characters, so R and nACS come first."""
    name = f"R{cell['acceleration']} n{cell['num_acs']} {cell['source']} s{cell['seed']}"
    if "real_fraction" in cell:
        name += f" {'only' if cell.get('real_only') else 'mix'}{100 * cell['real_fraction']:g}%"
    if "model" in cell:
        name += f" {cell['model'].replace('complex_unet', 'cunet')}"
    return name


def column_tags(cell: dict[str, Any]) -> dict[str, Any]:
    """Plain tags the runs table can add as columns (beside the phaselab.* ones)."""
    tags = {
        "source": cell["source"],
        "R": cell["acceleration"],
        "nACS": cell["num_acs"],
        "seed": cell["seed"],
    }
    for key in ("real_fraction", "model"):
        if key in cell:
            tags[key] = cell[key]
    return tags


def describe_trial(tracker: Tracker, run_id: str, spec: Any) -> None:
    """Description, the datasets (training, validation, test) with content digests, and which generator
    checkpoint made the training k-space."""
    cell = spec.cell
    mixing = ""
    if "real_fraction" in cell:
        share = f"{100 * cell['real_fraction']:g}% of the recTrain patients with acquired phase"
        mixing = f" ({share}{' alone' if cell.get('real_only') else ', the rest synthetic'})"
    tracker.describe_run(
        run_id,
        f"VarNet trained on **{cell['source']}** k-space{mixing} (synthesis draw of seed {cell['seed']}), "
        f"R={cell['acceleration']}, nACS={cell['num_acs']}, {spec.mask} masks; selected on recVal, tested "
        f"on the real recTest k-space ({len(spec.test_files)} volumes, a fixed mask per volume).",
    )
    for name, files, context in (
        ("recTrain", spec.train_shards, "training"),
        ("recVal", spec.val_shards, "validation"),
        ("recTest", spec.test_files, "test"),
    ):
        if files:
            digest = config_hash([Path(f).parent.name + "/" + Path(f).name for f in files], 32)
            source = "acquired" if context == "test" else cell["source"]
            tracker.log_dataset(run_id, f"{name}-{source}", digest, str(Path(files[0]).parent), context)
    attrs = read_attrs(spec.train_shards[0]) if spec.train_shards else {}
    if attrs.get("phaselab_checkpoint_sha256"):
        tracker.set_tags(run_id, {"phaselab.generator_sha256": attrs["phaselab_checkpoint_sha256"]})


def representative_slices(volumes: list[tuple[str, torch.Tensor, torch.Tensor]]) -> list[tuple[int, int]]:
    """(volume, slice) of up to three test slices: the middle slice of the first, middle and last volume,
    the same for every trial of a sweep."""
    picks = sorted({0, len(volumes) // 2, len(volumes) - 1})
    return [(v, volumes[v][1].shape[0] // 2) for v in picks]


@torch.no_grad()
def log_reconstructions(
    tracker: Tracker,
    run_id: str,
    model: Any,
    volumes: list[tuple[str, torch.Tensor, torch.Tensor]],
    masks: list[Any],
    device: torch.device,
) -> None:
    """The trial's reconstruction of the representative test slices (target, zero-filled, model; with
    the mask) as arrays, and as an image: target | reconstruction | error with its NRMSE."""
    arrays: dict[str, np.ndarray] = {}
    for k, (v, s) in enumerate(representative_slices(volumes)):
        name, kspace, target = volumes[v]
        columns = masks[v].columns.to(torch.bool)
        recon, zero_filled = reconstruct_volume(model, kspace[s : s + 1], columns, device, 1)
        arrays[f"slice{k}_target"] = target[s].numpy()
        arrays[f"slice{k}_recon"] = recon[0].numpy()
        arrays[f"slice{k}_zero_filled"] = zero_filled[0].numpy()
        arrays[f"slice{k}_mask"] = columns.numpy()
        arrays[f"slice{k}_name"] = np.array(f"{name}[{s}]")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "test_slices.npz"
        np.savez_compressed(path, **arrays)
        tracker.log_artifact(run_id, path, "reconstructions")
    import matplotlib.pyplot as plt

    figure = _figure(arrays)
    tracker.log_figure(run_id, figure, "reconstructions/test_slices.png")
    plt.close(figure)


def _figure(arrays: dict[str, np.ndarray]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = len([k for k in arrays if k.endswith("_target")])
    fig, axes = plt.subplots(count, 3, figsize=(7.5, 2.6 * count), squeeze=False)
    for k in range(count):
        target, recon = arrays[f"slice{k}_target"], arrays[f"slice{k}_recon"]
        error = np.abs(recon - target)
        nrmse = float(np.linalg.norm(recon - target) / np.linalg.norm(target))
        top = float(target.max())
        panels = (
            (target, f"target {arrays[f'slice{k}_name']}", top),
            (recon, "reconstruction", top),
            (error, f"|error| (x4), NRMSE {nrmse:.3f}", top / 4),
        )
        for ax, (image, title, vmax) in zip(axes[k], panels, strict=True):
            ax.imshow(image, cmap="gray", vmin=0, vmax=vmax)
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    return fig
