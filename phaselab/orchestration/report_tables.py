"""Tables and figures of per-source metric rows (phase metrics): Markdown with intervals, CSV, bar charts."""

from __future__ import annotations

from typing import Any


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    if not isinstance(value, float):
        return str(value)
    low, high = row.get(f"{key}_low"), row.get(f"{key}_high")
    interval = f" [{low:.3g}, {high:.3g}]" if low is not None and high is not None else ""
    return f"{value:.4g}{interval}"


def table_markdown(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A Markdown table, one row per source; floats with their 95% interval ``[low, high]`` when known."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row, c) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def table_csv(rows: list[dict[str, Any]]) -> str:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    lines = [",".join(keys)]
    lines += [",".join("" if row.get(k) is None else str(row[k]) for k in keys) for row in rows]
    return "\n".join(lines) + "\n"


def phase_table_figure(rows: list[dict[str, Any]], keys: list[str]) -> Any:
    """One bar chart per distance: a bar per source with its 95% interval (lower is closer to real)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(keys), figsize=(2.6 * len(keys) + 1, 3.4), squeeze=False)
    names = [row["source"] for row in rows]
    for ax, key in zip(axes[0], keys, strict=True):
        values = np.array([row.get(key, np.nan) for row in rows], dtype=float)
        low = np.array([row.get(f"{key}_low", v) for row, v in zip(rows, values, strict=True)], dtype=float)
        high = np.array([row.get(f"{key}_high", v) for row, v in zip(rows, values, strict=True)], dtype=float)
        errors = np.stack([np.clip(values - low, 0, None), np.clip(high - values, 0, None)])
        ax.bar(range(len(rows)), values, yerr=errors, capsize=3, color="tab:blue")
        ax.set_xticks(range(len(rows)), names, rotation=60, ha="right", fontsize=8)
        ax.set_title(key, fontsize=9)
        positive = values[np.isfinite(values) & (values > 0)]
        if positive.size and positive.max() > 20 * positive.min():  # e.g. iid noise next to the rest
            ax.set_yscale("log")
            ax.set_ylim(bottom=positive.min() / 3)
        for x, value in enumerate(values):  # the number, since bars near 0 vanish on a log axis
            if np.isfinite(value):
                ax.annotate(f"{value:.2g}", (x, 0), xycoords=("data", "axes fraction"), xytext=(0, 2),
                            textcoords="offset points", ha="center", fontsize=6, rotation=90)  # fmt: skip
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("distance of each source's phase from the acquired phase (lower is closer; 95% CI)")
    fig.tight_layout()
    return fig
