"""The metric grid of a sweep: aggregation over seeds, MLflow table + figures, and the terminal table."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

METRICS = ("ssim", "psnr", "nrmse", "nmse")


def source_label(cell: dict[str, Any]) -> str:
    """A grid row's name: the phase source, with the network when the grid compares several."""
    return f"{cell['source']} [{cell['model']}]" if "model" in cell else cell["source"]


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample std over seeds for every (source, R, nACS), plus a zero-filled row per (R, nACS)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        cell = row["cell"]
        groups[(source_label(cell), cell["acceleration"], cell["num_acs"])].append(row)
    zero_filled: dict[tuple, list[dict]] = defaultdict(list)
    for (_, r, n), members in groups.items():
        zero_filled[(r, n)].extend(members)

    table = []

    def summarize(source: str, r: int, n: int, members: list[dict], prefix: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "source": source,
            "acceleration": r,
            "num_acs": n,
            "seeds": len(members),
            "effective_acceleration": members[0].get("effective_acceleration"),
        }
        for metric in METRICS:
            values = [float(m[f"test_{prefix}{metric}"]) for m in members if f"test_{prefix}{metric}" in m]
            if values:
                entry[f"{metric}_mean"] = statistics.fmean(values)
                entry[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        return entry

    for (source, r, n), members in sorted(groups.items()):
        table.append(summarize(source, r, n, members, ""))
    for (r, n), members in sorted(zero_filled.items()):
        # The zero-filled reconstruction depends only on the mask, not on the source or seed.
        table.append(summarize("zero_filled", r, n, members[:1], "zf_"))
    return table


def format_grid(table: list[dict[str, Any]], metric: str = "ssim") -> str:
    """Source x R tables of ``metric`` mean ± std, one per nACS."""
    lines = []
    for n in sorted({e["num_acs"] for e in table}):
        part = [e for e in table if e["num_acs"] == n]
        rs = sorted({e["acceleration"] for e in part})
        sources = sorted({e["source"] for e in part}, key=lambda s: (s == "zero_filled", s))
        lines.append(f"test {metric.upper()} (mean ± std over seeds), nACS = {n}")
        eff = {e["acceleration"]: e.get("effective_acceleration") for e in part}
        header = f"{'source':<14}" + "".join(f"{'R=' + str(r) + f' ({eff[r]:.1f}x)':>18}" for r in rs)
        lines.append(header)
        for source in sources:
            cells = []
            for r in rs:
                entry = next((e for e in part if e["source"] == source and e["acceleration"] == r), None)
                if entry is None or f"{metric}_mean" not in entry:
                    cells.append(f"{'-':>18}")
                else:
                    # padded as a whole to the header's 18 columns (was 19 wide: values drifted off "-")
                    value = f"{entry[f'{metric}_mean']:.4f} ± {entry[f'{metric}_std']:.3f}"
                    cells.append(f"{value:>18}")
            lines.append(f"{source:<14}" + "".join(cells))
        lines.append("")
    return "\n".join(lines)


def figures(table: list[dict[str, Any]]) -> dict[str, Any]:
    """Metric-vs-R line plots per nACS (the studies' Figs 3-5) and source x R heatmaps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = {}
    acs_values = sorted({e["num_acs"] for e in table})
    sources = sorted({e["source"] for e in table}, key=lambda s: (s == "zero_filled", s))
    for metric in ("ssim", "psnr", "nrmse"):
        fig, axes = plt.subplots(1, len(acs_values), figsize=(4.5 * len(acs_values), 3.6), squeeze=False)
        for ax, n in zip(axes[0], acs_values, strict=True):
            for source in sources:
                pts = sorted(
                    (e["acceleration"], e[f"{metric}_mean"], e[f"{metric}_std"])
                    for e in table
                    if e["source"] == source and e["num_acs"] == n and f"{metric}_mean" in e
                )
                if pts:
                    r, mean, std = map(np.array, zip(*pts, strict=True))
                    style = "k--" if source == "zero_filled" else "-o"
                    ax.errorbar(r, mean, yerr=std, fmt=style, capsize=3, label=source)
            ax.set(title=f"nACS = {n}", xlabel="acceleration R", ylabel=metric.upper())
            ax.grid(alpha=0.3)
        axes[0][-1].legend(fontsize=8)
        fig.tight_layout()
        out[f"figures/{metric}_vs_R.png"] = fig
    for n in acs_values:
        part = [e for e in table if e["num_acs"] == n and e["source"] != "zero_filled"]
        rs = sorted({e["acceleration"] for e in part})
        names = sorted({e["source"] for e in part})
        grid = np.full((len(names), len(rs)), np.nan)
        for e in part:
            grid[names.index(e["source"]), rs.index(e["acceleration"])] = e["ssim_mean"]
        fig, ax = plt.subplots(figsize=(1.2 * len(rs) + 2.5, 0.5 * len(names) + 1.5))
        im = ax.imshow(grid, cmap="viridis", aspect="auto")
        ax.set(
            xticks=range(len(rs)),
            xticklabels=[f"R={r}" for r in rs],
            yticks=range(len(names)),
            yticklabels=names,
            title=f"test SSIM, nACS = {n}",
        )
        for (i, j), value in np.ndenumerate(grid):
            ax.text(j, i, f"{value:.3f}", ha="center", va="center", color="w", fontsize=8)
        fig.colorbar(im, ax=ax)
        fig.tight_layout()
        out[f"figures/ssim_heatmap_acs{n}.png"] = fig
    return out


def log_grid_to_parent(tracker, parent_id: str, rows: list[dict[str, Any]], config) -> list[dict[str, Any]]:
    """Log the per-trial rows, the aggregated grid (table, CSV, JSON, text) and the figures."""
    import matplotlib.pyplot as plt

    if not rows:
        return []
    flat_rows = [{**r["cell"], **{k: v for k, v in r.items() if k != "cell"}} for r in rows]
    plain = [r for r in rows if "real_fraction" not in r["cell"]]  # mixing cells have their own table
    table = aggregate(plain)
    tracker.log_table(parent_id, flat_rows, "grid/trials.json")
    tracker.log_table(parent_id, table, "grid/metric_grid.json")
    tracker.log_dict(parent_id, table, "grid/metric_grid_records.json")
    tracker.log_text(parent_id, _csv(table), "grid/metric_grid.csv")
    tracker.log_text(
        parent_id, format_grid(table, "ssim") + "\n" + format_grid(table, "psnr"), "grid/metric_grid.txt"
    )
    for name, fig in figures(table).items():
        tracker.log_figure(parent_id, fig, name)
        plt.close(fig)
    if config.grid.real_fraction:
        from phaselab.orchestration.mixing_report import format_mixing_table, mixing_figures, mixing_table

        mixing = mixing_table(rows, config.grid.real_fraction)
        tracker.log_dict(parent_id, mixing, "mixing/table.json")
        tracker.log_text(parent_id, format_mixing_table(mixing), "mixing/table.md")
        for name, fig in mixing_figures(mixing).items():
            tracker.log_figure(parent_id, fig, name)
            plt.close(fig)
    return table


def _csv(table: list[dict[str, Any]]) -> str:
    keys = list(dict.fromkeys(k for e in table for k in e))
    lines = [",".join(keys)]
    lines += [",".join("" if e.get(k) is None else str(e.get(k, "")) for k in keys) for e in table]
    return "\n".join(lines) + "\n"
