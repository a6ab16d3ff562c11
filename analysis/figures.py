"""The studies' figures from a sweep's MLflow records: metric vs effective acceleration per nACS (Fig. 5),
representative test reconstructions with error maps (Figs. 6-8), phase maps of every source (Fig. 2)
with an unwrapped view, the phase-metric bars and the mixing curves. Each is saved as PNG and PDF."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis.tables import METRICS, ZERO_FILLED  # noqa: E402

ERROR_GAIN = 4  # error maps are shown on [0, max(target) / ERROR_GAIN]


def save(fig: Any, folder: Path, stem: str) -> Path:
    """``stem.png`` and ``stem.pdf`` in ``folder``, each written under a temporary name then renamed;
    returns the PNG's path. Closes the figure."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for ext in ("pdf", "png"):
            final = folder / f"{stem}.{ext}"
            tmp = folder / f".{stem}.{ext}.{os.getpid()}.tmp"
            fig.savefig(tmp, format=ext, dpi=120, bbox_inches="tight")
            os.replace(tmp, final)
    finally:
        plt.close(fig)
    return folder / f"{stem}.png"


def metric_vs_effective_acceleration(table: list[dict[str, Any]]) -> Any:
    """Fig. 5: a row per nACS, a column per metric; each source's mean ± std over seeds against the
    effective acceleration, zero-filled dashed."""
    acs = sorted({e["num_acs"] for e in table})
    sources = list(dict.fromkeys(e["source"] for e in table))
    fig, axes = plt.subplots(
        len(acs), len(METRICS), figsize=(4.2 * len(METRICS), 3.1 * len(acs)), squeeze=False
    )
    for i, n in enumerate(acs):
        for j, (metric, (label, _, _)) in enumerate(METRICS.items()):
            ax = axes[i][j]
            for source in sources:
                pts = sorted(
                    (e["effective_acceleration"], e[f"{metric}_mean"], e[f"{metric}_std"])
                    for e in table
                    if e["source"] == source and e["num_acs"] == n and e.get("effective_acceleration")
                )
                if not pts:
                    continue
                x, mean, std = map(np.array, zip(*pts, strict=True))
                style = (
                    {"fmt": "k--", "label": "zero-filled"}
                    if source == ZERO_FILLED
                    else {"fmt": "-o", "label": source}
                )
                ax.errorbar(x, mean, yerr=std, capsize=3, ms=4, **style)
            ax.set(title=f"nACS = {n}", xlabel="effective acceleration (×)", ylabel=f"test {label}")
            ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("test metrics vs effective acceleration (mean ± std over seeds)", fontsize=10)
    fig.tight_layout()
    return fig


def nrmse(image: np.ndarray, target: np.ndarray) -> float:
    """||image - target|| / ||target|| of one slice (the per-image NRMSE of the figures)."""
    return float(np.linalg.norm(image - target) / np.linalg.norm(target))


def test_case_figure(cells: list[dict[str, Any]], k: int, sources: list[str]) -> tuple[Any, list[dict]]:
    """Figs. 6-8 for test slice ``k``: per chosen cell (an effective acceleration) a row of images -
    target, zero-filled, each source's VarNet - and under it the mask and the error maps, each image with
    its NRMSE. ``cells``: {"acceleration", "num_acs", "effective_acceleration", "trials": {source: trial
    with "recon" arrays}}. Returns the figure and a record per image (source, seed, run, NRMSE)."""
    columns = [ZERO_FILLED, *[s for s in sources if any(s in c["trials"] for c in cells)]]
    fig, axes = plt.subplots(
        2 * len(cells), 1 + len(columns), figsize=(1.9 * (1 + len(columns)), 3.9 * len(cells)), squeeze=False
    )
    records = []
    for i, cell in enumerate(cells):
        top_ax, err_ax = axes[2 * i], axes[2 * i + 1]
        first = next(iter(cell["trials"].values()))["recon"]
        target = first[f"slice{k}_target"]
        vmax = float(target.max())
        where = f"R={cell['acceleration']}, nACS={cell['num_acs']} ({cell['effective_acceleration']:.2f}×)"
        top_ax[0].imshow(target, cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
        top_ax[0].set_title(f"target {first[f'slice{k}_name']}", fontsize=7)
        mask = np.broadcast_to(first[f"slice{k}_mask"].astype(float), target.shape)
        err_ax[0].imshow(mask, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        err_ax[0].set_title(f"mask {where}", fontsize=6)
        for j, source in enumerate(columns, start=1):
            if source == ZERO_FILLED:
                trial, image, name = (
                    next(iter(cell["trials"].values())),
                    first[f"slice{k}_zero_filled"],
                    "zero-filled",
                )
            elif source in cell["trials"]:
                trial = cell["trials"][source]
                image, name = trial["recon"][f"slice{k}_recon"], f"{source} (seed {trial['cell']['seed']})"
            else:
                top_ax[j].axis("off")
                err_ax[j].axis("off")
                continue
            own_target = trial["recon"][f"slice{k}_target"]
            score = nrmse(image, own_target)
            records.append(
                {"slice": k, "name": str(first[f"slice{k}_name"]), "acceleration": cell["acceleration"],
                 "num_acs": cell["num_acs"], "effective_acceleration": cell["effective_acceleration"],
                 "source": source, "seed": None if source == ZERO_FILLED else trial["cell"]["seed"],
                 "run_id": trial["run_id"], "nrmse": score}
            )  # fmt: skip
            top_ax[j].imshow(image, cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
            top_ax[j].set_title(f"{name}\nNRMSE {score:.4f}", fontsize=7)
            err_ax[j].imshow(
                np.abs(image - own_target),
                cmap="inferno",
                vmin=0,
                vmax=vmax / ERROR_GAIN,
                interpolation="nearest",
            )
            err_ax[j].set_title(f"|error| ×{ERROR_GAIN}", fontsize=7)
        for ax in (*top_ax, *err_ax):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(
        f"test slice {k}: reconstructions and error maps at {len(cells)} effective accelerations", fontsize=9
    )
    fig.tight_layout()
    return fig, records


def _phase_columns(samples: dict[str, np.ndarray], sources: list[str]) -> list[str]:
    return ["acquired", *[f"phase_{s}" for s in sources if f"phase_{s}" in samples]]


def phase_maps_figure(samples: dict[str, np.ndarray], sources: list[str]) -> Any:
    """Fig. 2: for each sample slice, the magnitude, the acquired phase and each source's phase (wrapped,
    -pi..pi)."""
    columns = ["magnitude", *_phase_columns(samples, sources)]
    count = samples["magnitude"].shape[0]
    fig, axes = plt.subplots(count, len(columns), figsize=(1.9 * len(columns), 2.0 * count), squeeze=False)
    for i in range(count):
        for j, key in enumerate(columns):
            style = (
                {"cmap": "gray"}
                if key == "magnitude"
                else {"cmap": "twilight", "vmin": -np.pi, "vmax": np.pi}
            )
            axes[i][j].imshow(samples[key][i], **style, interpolation="nearest")
            axes[i][j].set_title(key.removeprefix("phase_") if i == 0 else "", fontsize=8)
            axes[i][j].axis("off")
    fig.suptitle("magnitude, acquired phase and each source's phase (rad, wrapped to -π..π)", fontsize=9)
    fig.tight_layout()
    return fig


def object_mask(magnitude: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """Where the object is: magnitude above ``fraction`` of the slice's 99th percentile."""
    return magnitude > fraction * np.percentile(magnitude, 99)


def unwrapped(phase: np.ndarray, inside: np.ndarray) -> np.ma.MaskedArray:
    """scikit-image's ``unwrap_phase`` inside the object (outside is noise), its mean there removed (the
    unwrapped phase is known up to a multiple of 2π)."""
    from skimage.restoration import unwrap_phase

    result = unwrap_phase(np.ma.masked_array(phase.astype(np.float64), mask=~inside))
    return result - result[inside].mean()


def unwrapped_figure(samples: dict[str, np.ndarray], sources: list[str]) -> Any:
    """The Fig. 2 slices' phases unwrapped inside the object, one colour scale per slice (row): the
    acquired phase's range (99.5th percentile of its magnitude)."""
    columns = _phase_columns(samples, sources)
    count = samples["magnitude"].shape[0]
    fig, axes = plt.subplots(
        count, len(columns), figsize=(1.9 * len(columns) + 0.8, 2.0 * count), squeeze=False
    )
    for i in range(count):
        inside = object_mask(samples["magnitude"][i])
        maps = [unwrapped(samples[key][i], inside) for key in columns]
        # the acquired phase's range: a source with a far larger one (unwrapped noise) saturates instead of
        # washing out the rest
        reference = np.abs(maps[0].compressed())
        limit = float(np.percentile(reference, 99.5)) if reference.size else 0.0
        limit = limit or max(float(np.abs(m).max()) for m in maps) or 1.0
        for j, (key, image) in enumerate(zip(columns, maps, strict=True)):
            shown = axes[i][j].imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
            axes[i][j].set_title(key.removeprefix("phase_") if i == 0 else "", fontsize=8)
            axes[i][j].axis("off")
        fig.colorbar(shown, ax=list(axes[i]), fraction=0.02, label="rad")
    fig.suptitle(
        "phase unwrapped in the object (skimage unwrap_phase; mean removed; scale: the acquired phase's)",
        fontsize=9,
    )
    return fig


def phase_metric_figure(rows: list[dict[str, Any]]) -> Any:
    """Each distance of each source's phase from the acquired phase, with its 95% interval."""
    from phaselab.orchestration.report_tables import phase_table_figure

    skip = {"source", "split", "slices"}
    keys = [
        k
        for k in dict.fromkeys(k for r in rows for k in r)
        if k not in skip and not k.endswith(("_low", "_high"))
    ]
    return phase_table_figure(rows, keys)


def mixing_figures(mixing: list[dict[str, Any]]) -> dict[str, Any]:
    """SSIM and PSNR vs the share of real-phase patients, per (R, nACS): stem -> figure."""
    from phaselab.orchestration.mixing_report import mixing_figures as figures

    return {f"mixing_{Path(name).stem}": fig for name, fig in figures(mixing).items()}
