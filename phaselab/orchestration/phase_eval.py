"""How far each phase source's samples are from the acquired phase, on recTrain (the set the SBDM study
scored with FID): weight-free distances with bootstrap intervals (and FID with local Inception weights),
a child run per source, and the source x metric table and figure on the parent run.

The samples are the phases the grid trains its VarNets on (``phaselab_phase`` of the synthesized shards),
so the table describes exactly the training data of each column of the metric grid.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from phaselab.content_key import config_hash
from phaselab.data.fastmri_io import read_volume
from phaselab.data.prepare import read_magnitude_and_phase
from phaselab.mri.phase_metrics import DISTANCE_KEYS, PAIRED_KEYS, phase_distance_intervals, phase_distances
from phaselab.orchestration.sweep import SweepContext

METRICS = (*DISTANCE_KEYS, *PAIRED_KEYS)
VERSION = 1


def _evenly(count: int, limit: int | None) -> np.ndarray:
    if limit is None or count <= limit:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(int))


def shard_phases(files: list[str]) -> torch.Tensor:
    """The synthesized phase of every slice of the shards, in order."""
    return torch.cat(
        [torch.from_numpy(read_volume(f, load_target=False).extras["phaselab_phase"]) for f in files]
    )


def score_source(
    phase: torch.Tensor,
    truth: torch.Tensor,
    magnitude: torch.Tensor,
    *,
    n_boot: int = 200,
    fid_weights: str | None = None,
) -> dict[str, Any]:
    """Point values and 95% bootstrap intervals of every distance (FID with ``fid_weights``)."""
    values = phase_distances(phase.numpy(), truth.numpy(), magnitude.numpy(), paired=True)
    row: dict[str, Any] = dict(values)
    if n_boot >= 2:
        for key, (low, high) in phase_distance_intervals(
            phase.numpy(), truth.numpy(), magnitude.numpy(), paired=True, n_boot=n_boot
        ).items():
            row[f"{key}_low"], row[f"{key}_high"] = low, high
    if fid_weights:
        from phaselab.mri.phase_fid import inception_fid

        row["fid"] = inception_fid(phase.numpy(), truth.numpy(), magnitude.numpy(), fid_weights)
    return row


@dataclass(frozen=True)
class PhaseReference:
    """The acquired phase of a split and its magnitude, and the slices the distances use."""

    split: str
    magnitude: torch.Tensor
    truth: torch.Tensor
    keep: torch.Tensor


def phase_reference(ctx: SweepContext, split: str = "recTrain") -> PhaseReference:
    prepared = [str(p) for p in ctx.prepared.files(split)]
    pairs = [read_magnitude_and_phase(p) for p in prepared]
    magnitude = torch.cat([m for m, _ in pairs])
    truth = torch.cat([p for _, p in pairs])
    keep = torch.from_numpy(_evenly(magnitude.shape[0], ctx.config.evaluation.max_slices))
    return PhaseReference(split, magnitude, truth, keep)


def score_phase_source(
    ctx: SweepContext,
    source: str,
    draws: dict[int, dict[str, list[str]]],
    reference: PhaseReference,
    log_fn: Callable[[str], None],
) -> dict[str, Any]:
    """One source's synthesized phase (its first seed's draw) against the acquired; cached per source."""
    evaluation, split, keep = ctx.config.evaluation, reference.split, reference.keep
    files = draws[min(draws)][split]
    key = config_hash(
        {"files": files, "slices": keep.tolist(), "eval": evaluation, "split": split, "v": VERSION}
    )
    cache = ctx.cache / "phase_metrics" / f"{source}-{key}.json"
    if cache.exists():
        row = json.loads(cache.read_text())
    else:
        phase = shard_phases(files)
        row = score_source(
            phase[keep],
            reference.truth[keep],
            reference.magnitude[keep],
            n_boot=evaluation.bootstrap,
            fid_weights=evaluation.fid_weights,
        )
        row = {"source": source, "split": split, "slices": int(keep.numel()), **row}
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(row, indent=1))
        os.replace(tmp, cache)
    shown = ", ".join(f"{k} {row[k]:.4g}" for k in (*METRICS, "fid") if k in row)
    log_fn(f"phase metrics {source}: {shown}")
    return row


def say_if_fid_skipped(ctx: SweepContext, log_fn: Callable[[str], None]) -> None:
    if ctx.config.evaluation.fid_weights is None:
        log_fn("phase metrics: FID skipped (set evaluation.fid_weights to a local Inception weights file)")


def log_phase_results(ctx: SweepContext, rows: list[dict[str, Any]], reference: PhaseReference) -> None:
    """A child run per source, the table, the distances figure and the sample panels on the parent."""
    _log_to_mlflow(ctx, rows)
    _log_samples(ctx, [r["source"] for r in rows], reference.magnitude, reference.truth, reference.split)


def evaluate_phase_sources(
    ctx: SweepContext,
    sources: list[str],
    log_fn: Callable[[str], None],
    *,
    split: str = "recTrain",
) -> list[dict[str, Any]]:
    """Score every source's synthesized ``split`` against the acquired phase and log the results."""
    say_if_fid_skipped(ctx, log_fn)
    reference = phase_reference(ctx, split)
    rows = [score_phase_source(ctx, source, ctx.shards[source], reference, log_fn) for source in sources]
    log_phase_results(ctx, rows, reference)
    return rows


def _log_samples(
    ctx: SweepContext, sources: list[str], magnitude: torch.Tensor, truth: torch.Tensor, split: str
) -> None:
    """Magnitude, acquired phase and each source's phase for three fixed slices (the studies' Fig. 2), as
    arrays for ``analysis/`` and as a picture on the parent run."""
    import tempfile

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = _evenly(magnitude.shape[0], 3)
    arrays = {"slices": picks, "magnitude": magnitude[picks].numpy(), "acquired": truth[picks].numpy()}
    for source in sources:
        draws = ctx.shards[source]
        arrays[f"phase_{source}"] = shard_phases(draws[min(draws)][split])[picks].numpy()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples.npz"
        np.savez_compressed(path, **arrays)
        ctx.tracker.log_artifact(ctx.parent_id, path, "phase_metrics")
    columns = ["magnitude", "acquired", *[f"phase_{s}" for s in sources]]
    fig, axes = plt.subplots(
        len(picks), len(columns), figsize=(1.9 * len(columns), 2 * len(picks)), squeeze=False
    )
    for i in range(len(picks)):
        for j, key in enumerate(columns):
            image = arrays[key][i]
            style = (
                {"cmap": "gray"}
                if key == "magnitude"
                else {"cmap": "twilight", "vmin": -np.pi, "vmax": np.pi}
            )
            axes[i][j].imshow(image, **style)
            axes[i][j].set_title(key.removeprefix("phase_") if i == 0 else "", fontsize=8)
            axes[i][j].axis("off")
    fig.suptitle(f"{split}: magnitude, acquired phase and each source's phase (rad, -pi..pi)", fontsize=9)
    fig.tight_layout()
    ctx.tracker.log_figure(ctx.parent_id, fig, "phase_metrics/samples.png")
    plt.close(fig)


def _log_to_mlflow(ctx: SweepContext, rows: list[dict[str, Any]]) -> None:
    """A child run per source (its distances and intervals as metrics) and the table on the parent."""
    from phaselab.orchestration.report_tables import phase_table_figure, table_csv, table_markdown

    tracker = ctx.tracker
    for row in rows:
        trial_key = config_hash({"sweep": ctx.key, "phase_metrics": row["source"], "split": row["split"]})
        existing = tracker.child_runs(ctx.parent_id, role="phase-metrics").get(trial_key)
        if existing is not None:
            run_id = existing.info.run_id
        else:
            tags = {"phaselab.role": "phase-metrics", "phaselab.source": row["source"]}
            run_id = tracker.start_child(ctx.parent_id, trial_key, f"phase-{row['source']}", tags)
        tracker.log_params(run_id, {"source": row["source"], "split": row["split"], "slices": row["slices"]})
        tracker.log_summary(run_id, {k: v for k, v in row.items() if isinstance(v, float)})
        tracker.end_run(run_id, "FINISHED")
    columns = ["source", *[k for k in (*METRICS, "fid") if any(k in r for r in rows)]]
    tracker.log_text(ctx.parent_id, table_markdown(rows, columns), "phase_metrics/table.md")
    tracker.log_text(ctx.parent_id, table_csv(rows), "phase_metrics/table.csv")
    tracker.log_dict(ctx.parent_id, rows, "phase_metrics/table.json")
    figure = phase_table_figure(rows, [c for c in columns if c != "source"])
    tracker.log_figure(ctx.parent_id, figure, "phase_metrics/distances.png")
    import matplotlib.pyplot as plt

    plt.close(figure)


def format_phase_table(rows: list[dict[str, Any]]) -> str:
    """Terminal table: one line per source, each distance with its 95% interval."""
    from phaselab.orchestration.report_tables import table_markdown

    columns = ["source", *[k for k in (*METRICS, "fid") if any(k in r for r in rows)]]
    return table_markdown(rows, columns)


def run_phase_evaluation(
    config, sources: list[str], log_fn: Callable[[str], None]
) -> tuple[list[dict[str, Any]], str, str]:
    """``phaselab evaluate-phase``: synthesize (or find) each source's recTrain phase, score it against
    the acquired phase, log it; returns the rows, the parent run id and the tracking URI."""
    from phaselab.orchestration.source_kspace import synthesize_sources
    from phaselab.orchestration.sweep import open_sweep

    ctx = open_sweep(config, log_fn, kind="evaluate-phase", key_extra={"sources": sources})
    with ctx.tracker.closed_on_error(ctx.parent_id):
        ctx.shards = synthesize_sources(ctx, sources, log_fn)
        rows = evaluate_phase_sources(ctx, sources, log_fn)
    ctx.tracker.end_run(ctx.parent_id, "FINISHED")
    return rows, ctx.parent_id, ctx.tracking_uri
