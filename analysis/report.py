"""The analysis of a recon-grid sweep: its tables and figures and one self-contained HTML report, written
to a folder and logged to the sweep's parent run under ``analysis/``.

    python analysis/report.py                        # the demo's latest sweep (phaselab_runs/demo)
    python analysis/report.py --tracking-uri http://host:5000 --experiment NAME --parent-run ID --out DIR

Reads only finished trials, so it also reports on a sweep that is still running (as far as it got).
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: the repository root, not analysis/, goes on the path
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

import argparse  # noqa: E402
import base64  # noqa: E402
import html  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

from analysis import figures, load, tables  # noqa: E402
from analysis.load import Sweep, SweepNotFound  # noqa: E402
from phaselab.tracking import with_retries  # noqa: E402

ARTIFACT_DIR = "analysis"


@dataclass
class Section:
    title: str
    text: str = ""
    tables: str = ""  # HTML
    figures: list[Path] = field(default_factory=list)  # PNGs, inlined
    files: list[Path] = field(default_factory=list)  # linked (CSV, Markdown, LaTeX, PDF)


@dataclass
class Report:
    out: Path
    html: Path
    files: list[Path]
    sweep: Sweep
    table: list[dict[str, Any]]  # the test-metric table (tables.metric_table)
    logged: bool


def write_text(path: Path, text: str) -> Path:
    """Write under a temporary name, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _write_tables(out: Path, stem: str, rows: list[dict], grids: list[tables.Grid]) -> list[Path]:
    return [
        write_text(out / "tables" / f"{stem}.csv", tables.to_csv(rows)),
        write_text(out / "tables" / f"{stem}.md", tables.to_markdown(grids)),
        write_text(out / "tables" / f"{stem}.tex", tables.to_latex(grids)),
    ]


def _with_pdf(pngs: list[Path]) -> list[Path]:
    return [p.with_suffix(".pdf") for p in pngs]


def representative_cells(trials: list[dict[str, Any]], count: int = 3) -> list[tuple[int, int]]:
    """(R, nACS) of ``count`` effective accelerations of the grid, evenly from the lowest to the highest."""
    effective: dict[tuple[int, int], float] = {}
    for trial in trials:
        cell = trial["cell"]
        value = trial.get("effective_acceleration", float(cell["acceleration"]))
        effective.setdefault((cell["acceleration"], cell["num_acs"]), value)
    ranked = sorted(effective, key=lambda c: (effective[c], c))
    if len(ranked) <= count:
        return ranked
    picks = sorted({round(i * (len(ranked) - 1) / (count - 1)) for i in range(count)})
    return [ranked[i] for i in picks]


def _test_cases(sweep: Sweep, work: Path, out: Path) -> Section:
    trials = sweep.grid_trials
    cells = []
    for r, n in representative_cells(trials):
        chosen: dict[str, dict] = {}
        for trial in sorted(trials, key=lambda t: t["cell"]["seed"]):  # each source's lowest seed
            cell = trial["cell"]
            if (cell["acceleration"], cell["num_acs"]) == (r, n) and cell["source"] not in chosen:
                recon = load.reconstructions(sweep, trial, work / "recon")
                if recon is not None:
                    chosen[cell["source"]] = {**trial, "recon": recon}
        if chosen:
            eff = next(iter(chosen.values()))["effective_acceleration"]
            cells.append({"acceleration": r, "num_acs": n, "effective_acceleration": eff, "trials": chosen})
    section = Section(
        "Representative test cases (Figs. 6–8)",
        "The same test slices for every trial: target, zero-filled and each source's VarNet (its lowest "
        f"seed) at {len(cells)} effective acceleration(s), the mask and the error maps "
        f"(|reconstruction − target| on [0, max(target)/{figures.ERROR_GAIN}]), each image with its NRMSE.",
    )
    if not cells:
        section.text = "No trial logged its test reconstructions (reconstructions/test_slices.npz)."
        return section
    slices = sum(key.endswith("_target") for key in next(iter(cells[0]["trials"].values()))["recon"])
    records = []
    for k in range(slices):
        fig, rows = figures.test_case_figure(cells, k, sweep.sources)
        section.figures.append(figures.save(fig, out / "figures", f"test_cases_slice{k}"))
        records += rows
    section.files = [
        write_text(out / "tables" / "test_cases.csv", tables.to_csv(records)),
        *_with_pdf(section.figures),
    ]
    return section


def _phase_sections(sweep: Sweep, out: Path) -> list[Section]:
    sections = []
    samples = load.phase_samples(sweep)
    if samples is not None:
        pngs = [
            figures.save(figures.phase_maps_figure(samples, sweep.sources), out / "figures", "phase_maps"),
            figures.save(
                figures.unwrapped_figure(samples, sweep.sources), out / "figures", "phase_unwrapped"
            ),
        ]
        text = (
            f"{samples['magnitude'].shape[0]} fixed recTrain slices: magnitude, acquired phase and each "
            "source's phase (the phase its VarNets train on), wrapped; then unwrapped inside the object "
            "(magnitude above 10% of its 99th percentile) with scikit-image's unwrap_phase, mean removed."
        )
        sections.append(Section("Phase maps (Fig. 2)", text, figures=pngs, files=_with_pdf(pngs)))
    rows = load.phase_metric_rows(sweep)
    if rows:
        grids = tables.phase_grids(rows)
        files = _write_tables(out, "phase_metrics", rows, grids)
        png = figures.save(figures.phase_metric_figure(rows), out / "figures", "phase_metrics")
        text = (
            "Weight-free distances of each source's phase from the acquired phase, 95% bootstrap intervals."
        )
        sections.append(
            Section("Phase metrics", text, tables.to_html(grids), [png], [*files, png.with_suffix(".pdf")])
        )
    return sections


def _mixing_section(sweep: Sweep, out: Path) -> Section | None:
    if not sweep.mixing_trials:
        return None
    from phaselab.orchestration.mixing_report import mixing_table

    fractions = sorted(
        {t["cell"]["real_fraction"] for t in sweep.mixing_trials if "real_fraction" in t["cell"]}
    )
    mixing = mixing_table(sweep.mixing_trials, fractions)
    grids = tables.mixing_grids(mixing)
    files = _write_tables(out, "mixing", mixing, grids)
    pngs = [figures.save(fig, out / "figures", stem) for stem, fig in figures.mixing_figures(mixing).items()]
    text = (
        "Test SSIM (%) and PSNR vs the share of recTrain patients with acquired phase, the rest the source's "
        "synthetic phase; 'real only' trains on the real patients alone (the control)."
    )
    return Section(
        "Real/synthetic mixing (Table III)", text, tables.to_html(grids), pngs, [*files, *_with_pdf(pngs)]
    )


def _metric_sections(sweep: Sweep, work: Path, out: Path) -> tuple[list[Section], list[dict[str, Any]]]:
    trials = sweep.grid_trials
    if not trials:
        return [Section("Test metrics", "No trial of the grid has finished yet.")], []
    per_volume = load.per_volume(sweep, trials, work / "per_volume")
    table = tables.metric_table(trials, per_volume, sweep.sources)
    grids = tables.metric_grids(table)
    files = _write_tables(out, "test_metrics", table, grids)
    values = tables.volume_values(trials, per_volume)
    flat = [
        {"source": s, "acceleration": r, "num_acs": n, "volume": volume, **metrics}
        for (s, r, n), volumes in sorted(values.items(), key=str)
        for volume, metrics in sorted(volumes.items())
    ]
    files.append(write_text(out / "tables" / "test_per_volume.csv", tables.to_csv(flat)))
    text = (
        "Test metrics on the acquired (real) recTest k-space, mean ± std over seeds, per source, R and nACS; "
        "p-values of two-sided paired Wilcoxon signed-rank tests against VarNets trained on the acquired "
        "phase (gt) and on a smooth random phase, paired by test volume (test_per_volume.csv)."
    )
    png = figures.save(
        figures.metric_vs_effective_acceleration(table), out / "figures", "metrics_vs_effective_acceleration"
    )
    return [
        Section("Test metrics", text, tables.to_html(grids), files=files),
        Section(
            "Metrics vs effective acceleration (Fig. 5)",
            "Each source's mean ± std over seeds against the effective acceleration, a panel per nACS.",
            figures=[png],
            files=[png.with_suffix(".pdf")],
        ),
    ], table


STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}img{max-width:100%}
.note{color:#666;font-size:12px;margin-top:0}code{background:#f3f3f3;padding:1px 3px}"""


def _html(sweep: Sweep, sections: list[Section], out: Path) -> str:
    expected = load.expected_trials(sweep)
    grid = sweep.config.get("grid", {})
    facts = {
        "experiment": sweep.experiment,
        "parent run": f"{sweep.parent_name} ({sweep.parent_id})",
        "status": sweep.status,
        "finished trials": f"{len(sweep.trials)}"
        + (f" of {expected}" if expected else "")
        + (f" ({sweep.unfinished} running or failed)" if sweep.unfinished else ""),
        "grid": f"sources {grid.get('sources')}, R {grid.get('accelerations')}, nACS {grid.get('num_acs')}, "
        f"seeds {grid.get('seeds')}",
        "tracking URI": sweep.tracking_uri,
        "made": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>phaselab analysis {html.escape(sweep.parent_name)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>phaselab sweep analysis: {html.escape(sweep.parent_name)}</h1>",
        "<table>" + "".join(f"<tr><th>{k}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items())
        + "</table>",
    ]  # fmt: skip
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.text:
            parts.append(f"<p>{html.escape(section.text)}</p>")
        parts.append(section.tables)
        for png in section.figures:
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            parts.append(f'<figure><img alt="{png.stem}" src="data:image/png;base64,{data}"></figure>')
        if section.files:
            names = [html.escape(p.relative_to(out).as_posix()) for p in section.files]
            links = ", ".join(f'<a href="{name}">{name}</a>' for name in names)
            parts.append(f'<p class="note">files: {links}</p>')
    parts.append("</body></html>")
    return "\n".join(parts)


def build_report(
    sweep: Sweep, out: Path, *, log_to_mlflow: bool = True, say: Callable[[str], None] = print
) -> Report:
    """Write the tables, figures and ``report.html`` to ``out``; log the folder to the parent run."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="phaselab-analysis-") as tmp:
        work = Path(tmp)
        sections, table = _metric_sections(sweep, work, out)
        sections.append(_test_cases(sweep, work, out))
        sections += _phase_sections(sweep, out)
        mixing = _mixing_section(sweep, out)
        if mixing is not None:
            sections.append(mixing)
    page = write_text(out / "report.html", _html(sweep, sections, out))
    files = sorted(p for p in out.rglob("*") if p.is_file() and not p.name.endswith(".tmp"))
    if log_to_mlflow:
        client = sweep.tracker.client
        with_retries(lambda: client.log_artifacts(sweep.parent_id, str(out), ARTIFACT_DIR))
    return Report(out, page, files, sweep, table, log_to_mlflow)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="analysis/report.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI, or a folder holding mlflow.db (default: phaselab_runs/demo, the demo's)",
    )
    parser.add_argument("--experiment", help=f"experiment name (default: {load.DEFAULT_EXPERIMENT})")
    parser.add_argument("--parent-run", help="the sweep's parent run id (default: the latest grid sweep)")
    parser.add_argument(
        "--out", type=Path, help="output folder (default: <output_dir>/analysis/<parent run id>)"
    )
    parser.add_argument("--no-log", action="store_true", help="do not log the folder to the parent run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        sweep = load.find_sweep(args.tracking_uri, args.experiment, args.parent_run)
    except SweepNotFound as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = args.out or (sweep.output_dir or Path("phaselab_runs")) / "analysis" / sweep.parent_id
    print(
        f"sweep {sweep.parent_name} ({sweep.parent_id}, {sweep.status}) in {sweep.tracking_uri}: "
        f"{len(sweep.trials)} finished trial(s)"
        + (f", {sweep.unfinished} not finished" if sweep.unfinished else "")
    )
    report = build_report(sweep, out, log_to_mlflow=not args.no_log)
    for kind in ("tables", "figures"):
        names = sorted(p.name for p in report.files if p.parent.name == kind)
        print(f"{kind}: {out / kind} ({', '.join(names) or 'none'})")
    print(f"report: {report.html}")
    if report.logged:
        print(f"logged to MLflow run {sweep.parent_id} under {ARTIFACT_DIR}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
