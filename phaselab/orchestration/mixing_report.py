"""The mixing experiment's results: test SSIM and PSNR vs the share of real-phase patients per source, the
real-only control beside them, as the second study's Table III (mean ± std over seeds, SSIM in %) and as
figures on the parent run."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def mixing_table(rows: list[dict[str, Any]], fractions: list[float]) -> list[dict[str, Any]]:
    """One entry per (R, nACS, series, p): series = a source (its mix with real patients), "real only"
    (the control) or the anchors; p = 0 is the source's own cell, p = 1 the gt cell."""
    by_cell: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        cell = row["cell"]
        p = cell.get("real_fraction")
        if p is None:
            p = 1.0 if cell["source"] == "gt" else 0.0
        series = "real only" if cell.get("real_only") else cell["source"]
        if "model" in cell:
            series = f"{series} [{cell['model']}]"
        by_cell[cell["acceleration"], cell["num_acs"], series, p].append(row)

    def model_of(series: str) -> str:
        return series[series.index(" [") :] if " [" in series else ""

    anchors = ("gt", "real only")
    sources = sorted({s for (_, _, s, _) in by_cell if s.split(" [")[0] not in anchors})
    controls = sorted({s for (_, _, s, _) in by_cell if s.startswith("real only")}) or ["real only"]
    table = []
    for r, n in sorted({(r, n) for (r, n, _, _) in by_cell}):
        for series in [*sources, *controls]:
            gt = by_cell.get((r, n, "gt" + model_of(series), 1.0), [])
            for p in sorted({0.0, 1.0, *fractions}):
                members = gt if p == 1.0 else by_cell.get((r, n, series, p), [])
                if series.startswith("real only") and p == 0.0:
                    continue  # no real patients, no training data
                if not members:
                    continue
                ssim = _stats([float(m["test_ssim"]) for m in members])
                psnr = _stats([float(m["test_psnr"]) for m in members])
                table.append(
                    {"acceleration": r, "num_acs": n, "series": series, "real_fraction": p,
                     "seeds": len(members), "ssim_mean": ssim[0], "ssim_std": ssim[1],
                     "psnr_mean": psnr[0], "psnr_std": psnr[1]}
                )  # fmt: skip
    return table


def format_mixing_table(table: list[dict[str, Any]]) -> str:
    """Markdown in the layout of PhaseGen's Table III: a row per real share, SSIM (%) and PSNR (dB) per
    series, mean ± std over seeds."""
    out = []
    for r, n in sorted({(e["acceleration"], e["num_acs"]) for e in table}):
        part = [e for e in table if (e["acceleration"], e["num_acs"]) == (r, n)]
        series = list(dict.fromkeys(e["series"] for e in part))
        out.append(f"R = {r}, nACS = {n}: test SSIM (%) / PSNR (dB), mean ± std over seeds")
        out.append("| real phase | " + " | ".join(f"{s} SSIM | {s} PSNR" for s in series) + " |")
        out.append("|---|" + "---|---|" * len(series))
        for p in sorted({e["real_fraction"] for e in part}):
            cells = []
            for s in series:
                entry = next((e for e in part if e["series"] == s and e["real_fraction"] == p), None)
                if entry is None:
                    cells += ["-", "-"]
                else:
                    cells.append(f"{100 * entry['ssim_mean']:.2f} ± {100 * entry['ssim_std']:.2f}")
                    cells.append(f"{entry['psnr_mean']:.2f} ± {entry['psnr_std']:.2f}")
            out.append(f"| {100 * p:g}% | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def mixing_figures(table: list[dict[str, Any]]) -> dict[str, Any]:
    """Per (R, nACS): SSIM and PSNR vs the real share, a line per source (mixed), the real-only control
    dashed, and the source-only (p = 0) and all-real (p = 1) levels as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    for r, n in sorted({(e["acceleration"], e["num_acs"]) for e in table}):
        part = [e for e in table if (e["acceleration"], e["num_acs"]) == (r, n)]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, metric, unit in ((axes[0], "ssim", "SSIM"), (axes[1], "psnr", "PSNR (dB)")):
            top = next((e for e in part if e["real_fraction"] == 1.0), None)
            if top is not None:
                ax.axhline(top[f"{metric}_mean"], color="k", lw=1, label="100% real (gt)")
            for series in dict.fromkeys(e["series"] for e in part):
                mixed = [e for e in part if e["series"] == series and 0 < e["real_fraction"] < 1]
                pts = sorted((e["real_fraction"], e[f"{metric}_mean"], e[f"{metric}_std"]) for e in mixed)
                if pts:
                    x, mean, std = zip(*pts, strict=True)
                    control = series.startswith("real only")
                    style = "k--o" if control else "-o"
                    label = f"{series} (control)" if control else f"{series} + real"
                    ax.errorbar(x, mean, yerr=std, fmt=style, capsize=3, label=label)
                zero = next((e for e in part if e["series"] == series and e["real_fraction"] == 0.0), None)
                if zero is not None:
                    ax.axhline(zero[f"{metric}_mean"], ls=":", lw=1, label=f"{series} only (0% real)")
            ax.set_xscale("log")
            ax.set(
                xlabel="share of real-phase patients in recTrain",
                ylabel=f"test {unit}",
                title=f"R={r}, nACS={n}",
            )
            ax.grid(alpha=0.3)
        axes[1].legend(fontsize=7)
        fig.tight_layout()
        figures[f"mixing/ssim_psnr_vs_real_fraction_R{r}_acs{n}.png"] = fig
    return figures
