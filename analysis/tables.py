"""The studies' tables: test SSIM/PSNR/NRMSE per source x R x nACS (mean ± std over seeds, best per column
marked) with paired Wilcoxon signed-rank tests across test volumes, the phase-metric table and the mixing
table, each as CSV (long, full precision), Markdown, LaTeX and HTML.

One layout (``Grid``: a title, a header and rows of ``(text, bold)`` cells) feeds the Markdown, LaTeX and
HTML writers, so the three show the same numbers.
"""

from __future__ import annotations

import csv
import html
import io
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import wilcoxon

from phaselab.orchestration.report import aggregate

# metric -> (label, which is better, decimals shown)
METRICS = {"ssim": ("SSIM", max, 4), "psnr": ("PSNR (dB)", max, 2), "nrmse": ("NRMSE", min, 4)}
REFERENCES = ("gt", "smooth")  # the paired tests: does a source beat the acquired phase, a smooth one?
ZERO_FILLED = "zero_filled"
NA = "–"


@dataclass
class Grid:
    title: str
    header: list[str]
    rows: list[list[tuple[str, bool]]]  # (text, bold)
    note: str = ""


# ---- numbers -----------------------------------------------------------------------------------------
def volume_values(
    trials: list[dict[str, Any]], per_volume: dict[str, list[dict[str, Any]]]
) -> dict[tuple, dict[str, dict[str, float]]]:
    """(source, R, nACS) -> test volume -> metric -> the volume's value averaged over seeds; plus a
    ``zero_filled`` row per (R, nACS) (it depends only on the masks: taken from the cell's first trial)."""
    seeds: dict[tuple, dict[str, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    first: dict[tuple, str] = {}
    for trial in trials:
        cell = trial["cell"]
        r, n = cell["acceleration"], cell["num_acs"]
        first.setdefault((r, n), trial["run_id"])
        for row in per_volume.get(trial["run_id"], []):
            for metric in METRICS:
                seeds[cell["source"], r, n][row["volume"]][metric].append(float(row[metric]))
    out = {
        key: {vol: {m: statistics.fmean(v) for m, v in values.items()} for vol, values in volumes.items()}
        for key, volumes in seeds.items()
    }
    for (r, n), run_id in first.items():
        rows = per_volume.get(run_id, [])
        if rows:
            out[ZERO_FILLED, r, n] = {
                row["volume"]: {m: float(row[f"zf_{m}"]) for m in METRICS} for row in rows
            }
    return out


def paired_test(a: dict[str, float], b: dict[str, float]) -> tuple[float | None, int]:
    """Two-sided Wilcoxon signed-rank test of ``a`` vs ``b`` paired by test volume: (p, volumes).
    p is None without a common volume, 1.0 when every difference is zero (nothing to rank)."""
    common = sorted(set(a) & set(b))
    if not common:
        return None, 0
    x, y = np.array([a[v] for v in common]), np.array([b[v] for v in common])
    if np.all(x == y):
        return 1.0, len(common)
    return float(wilcoxon(x, y).pvalue), len(common)


def metric_table(
    trials: list[dict[str, Any]], per_volume: dict[str, list[dict[str, Any]]], sources: list[str]
) -> list[dict[str, Any]]:
    """A row per (nACS, R, source) and zero-filled: effective acceleration, seeds, test volumes, and per
    metric mean, std (sample, over seeds), whether it is the column's best source (ties: all of them;
    zero-filled is shown but not ranked) and the p-values of the paired tests against each reference."""
    by_volume = volume_values(trials, per_volume)
    order = {s: i for i, s in enumerate([*sources, ZERO_FILLED])}
    entries = sorted(
        aggregate(trials),
        key=lambda e: (e["num_acs"], e["acceleration"], order.get(e["source"], len(order)), e["source"]),
    )
    table = []
    for entry in entries:
        key = (entry["source"], entry["acceleration"], entry["num_acs"])
        row = {k: entry[k] for k in ("source", "acceleration", "num_acs", "effective_acceleration", "seeds")}
        row["volumes"] = len(by_volume.get(key, {}))
        for metric, (_, better, _) in METRICS.items():
            row[f"{metric}_mean"], row[f"{metric}_std"] = entry[f"{metric}_mean"], entry[f"{metric}_std"]
            column = [
                e[f"{metric}_mean"]
                for e in entries
                if (e["acceleration"], e["num_acs"]) == key[1:] and e["source"] != ZERO_FILLED
            ]
            ranked = entry["source"] != ZERO_FILLED  # a reference without a model: shown, not ranked
            row[f"{metric}_best"] = ranked and entry[f"{metric}_mean"] == better(column)
            for ref in REFERENCES:
                ref_values = by_volume.get((ref, *key[1:]))
                p = None
                if ref != entry["source"] and ref_values is not None and key in by_volume:
                    mine = {v: m[metric] for v, m in by_volume[key].items()}
                    p, _ = paired_test(mine, {v: m[metric] for v, m in ref_values.items()})
                row[f"{metric}_p_vs_{ref}"] = p
        table.append(row)
    return table


# ---- layouts -----------------------------------------------------------------------------------------
def _columns(table: list[dict[str, Any]]) -> list[tuple[int, int, float | None]]:
    seen = {(e["num_acs"], e["acceleration"]): e.get("effective_acceleration") for e in table}
    return [(n, r, eff) for (n, r), eff in sorted(seen.items())]


def column_label(num_acs: int, acceleration: int, effective: float | None) -> str:
    eff = f" ({effective:.2f}×)" if effective is not None else ""
    return f"nACS {num_acs}, R {acceleration}{eff}"


def format_mean_std(mean: float, std: float, decimals: int) -> str:
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def format_p(p: float | None) -> str:
    return NA if p is None else f"{p:.3g}"


def _floor(volumes: list[int]) -> str:
    """The smallest p the exact test gives with this few volumes (2 / 2^n: every difference one way)."""
    if not volumes or min(volumes) > 12:
        return ""
    return f"; with {min(volumes)} volumes the exact test's smallest p is {2 / 2 ** min(volumes):.3g}"


def metric_grids(table: list[dict[str, Any]]) -> list[Grid]:
    """Per metric: the mean ± std table (source x column, best in bold) and its p-value table."""
    columns = _columns(table)
    sources = list(dict.fromkeys(e["source"] for e in table))
    cell = {(e["source"], e["num_acs"], e["acceleration"]): e for e in table}
    header = ["source", *[column_label(*c) for c in columns]]
    seeds = sorted({e["seeds"] for e in table if e["source"] != ZERO_FILLED})
    volumes = sorted({e["volumes"] for e in table if e["volumes"]})
    grids = []
    for metric, (label, better, decimals) in METRICS.items():
        rows, p_rows = [], []
        for source in sources:
            row, p_row = [(source, False)], [(source, False)]
            for n, r, _ in columns:
                entry = cell.get((source, n, r))
                if entry is None:
                    row.append((NA, False))
                    p_row.append((NA, False))
                    continue
                text = format_mean_std(entry[f"{metric}_mean"], entry[f"{metric}_std"], decimals)
                row.append((text, bool(entry[f"{metric}_best"])))
                p_row.append(
                    (" / ".join(format_p(entry[f"{metric}_p_vs_{ref}"]) for ref in REFERENCES), False)
                )
            rows.append(row)
            p_rows.append(p_row)
        direction = "higher" if better is max else "lower"
        grids.append(
            Grid(
                f"Test {label}: mean ± std over seeds (n = {', '.join(map(str, seeds))})",
                header,
                rows,
                f"{direction} is better; best source per column in bold (zero-filled: no model, not ranked)",
            )
        )
        grids.append(
            Grid(
                f"Test {label}: paired Wilcoxon signed-rank p-values, vs {' / vs '.join(REFERENCES)}",
                header,
                p_rows,
                "two-sided, paired by test volume across "
                f"{', '.join(map(str, volumes)) or '0'} test volumes (each volume's value averaged over "
                f"seeds){_floor(volumes)}; {NA}: the reference itself or not in the sweep",
            )
        )
    return grids


def phase_grids(rows: list[dict[str, Any]]) -> list[Grid]:
    """The phase-metric table: each distance of each source from the acquired phase [95% interval]."""
    skip = {"source", "split", "slices"}
    keys = [
        k
        for k in dict.fromkeys(k for r in rows for k in r)
        if k not in skip and not k.endswith(("_low", "_high"))
    ]
    body = []
    for row in rows:
        cells = [(str(row["source"]), False)]
        for key in keys:
            value, low, high = row.get(key), row.get(f"{key}_low"), row.get(f"{key}_high")
            text = NA if value is None else f"{value:.4g}"
            if value is not None and low is not None and high is not None:
                text += f" [{low:.3g}, {high:.3g}]"
            cells.append((text, False))
        body.append(cells)
    split = rows[0].get("split", "recTrain") if rows else "recTrain"
    slices = rows[0].get("slices", "?") if rows else "?"
    return [
        Grid(
            f"Distance of each source's {split} phase from the acquired phase ({slices} slices)",
            ["source", *keys],
            body,
            "lower is closer to the acquired phase; [95% bootstrap interval]",
        )
    ]


def mixing_grids(mixing: list[dict[str, Any]]) -> list[Grid]:
    """Table III of the mixing study: per (R, nACS) a row per real share, SSIM (%) and PSNR per series."""
    grids = []
    for r, n in sorted({(e["acceleration"], e["num_acs"]) for e in mixing}):
        part = [e for e in mixing if (e["acceleration"], e["num_acs"]) == (r, n)]
        series = list(dict.fromkeys(e["series"] for e in part))
        body = []
        for p in sorted({e["real_fraction"] for e in part}):
            cells = [(f"{100 * p:g}%", False)]
            for s in series:
                e = next((e for e in part if e["series"] == s and e["real_fraction"] == p), None)
                cells.append(
                    (
                        NA if e is None else format_mean_std(100 * e["ssim_mean"], 100 * e["ssim_std"], 2),
                        False,
                    )
                )
                cells.append((NA if e is None else format_mean_std(e["psnr_mean"], e["psnr_std"], 2), False))
            body.append(cells)
        header = ["real phase", *[f"{s} {m}" for s in series for m in ("SSIM (%)", "PSNR (dB)")]]
        grids.append(
            Grid(f"Real/synthetic mixing, R = {r}, nACS = {n}", header, body, "mean ± std over seeds")
        )
    return grids


# ---- writers -----------------------------------------------------------------------------------------
def to_csv(rows: list[dict[str, Any]]) -> str:
    """Long format, full precision, one line per row; empty for a missing value."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if row.get(k) is None else row[k] for k in keys} for row in rows)
    return buffer.getvalue()


def to_markdown(grids: list[Grid]) -> str:
    out = []
    for grid in grids:
        out += [f"### {grid.title}", ""]
        out.append("| " + " | ".join(grid.header) + " |")
        out.append("|" + "---|" * len(grid.header))
        for row in grid.rows:
            out.append("| " + " | ".join(f"**{t}**" if bold else t for t, bold in row) + " |")
        out += ["", f"*{grid.note}*" if grid.note else "", ""]
    return "\n".join(out)


def _tex(text: str) -> str:
    for char, escaped in (
        ("\\", r"\textbackslash{}"),
        ("$", r"\$"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
    ):
        text = text.replace(char, escaped)
    return text.replace("±", r"$\pm$").replace("×", r"$\times$").replace(NA, "--")


def to_latex(grids: list[Grid]) -> str:
    """One ``table`` per grid (plain ``tabular`` with ``\\hline``: no package needed)."""
    out = ["% made by analysis/report.py"]
    for grid in grids:
        out += [r"\begin{table}[ht]", r"\centering", r"\small"]
        out.append(rf"\caption{{{_tex(grid.title)}; {_tex(grid.note)}.}}")
        out.append(r"\begin{tabular}{l" + "c" * (len(grid.header) - 1) + "}")
        out += [r"\hline", " & ".join(_tex(h) for h in grid.header) + r" \\", r"\hline"]
        for row in grid.rows:
            out.append(" & ".join(rf"\textbf{{{_tex(t)}}}" if bold else _tex(t) for t, bold in row) + r" \\")
        out += [r"\hline", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)


def to_html(grids: list[Grid]) -> str:
    out = []
    for grid in grids:
        out.append(f"<h4>{html.escape(grid.title)}</h4>")
        out.append("<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in grid.header))
        out.append("</tr></thead><tbody>")
        for row in grid.rows:
            cells = (
                f"<td><b>{html.escape(t)}</b></td>" if bold else f"<td>{html.escape(t)}</td>"
                for t, bold in row
            )
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</tbody></table>")
        if grid.note:
            out.append(f'<p class="note">{html.escape(grid.note)}</p>')
    return "\n".join(out)
