"""analysis/report.py on a tiny grid: its tables against MLflow's own values (child runs' test metrics,
scipy's Wilcoxon on the per-volume artifacts), the CSV/Markdown/LaTeX agreeing, the HTML embedding every
figure, the folder logged to the parent run; and the error on a store without a sweep."""

import csv
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from scipy.stats import wilcoxon

from analysis import report
from phaselab.config import load_config
from phaselab.orchestration.grid import run_recon_grid

pytestmark = pytest.mark.ray
DECIMALS = {"ssim": 4, "psnr": 2, "nrmse": 4}
BETTER = {"ssim": max, "psnr": max, "nrmse": min}


@pytest.fixture(scope="module")
def analysed(ray_session, tmp_path_factory):
    """A finished tiny grid (3 sources x 2 seeds, 4 test volumes), a trial run still RUNNING beside it
    (a sweep in progress), and the report made by ``main`` with its defaults but the store."""
    out = tmp_path_factory.mktemp("sweep")
    config = load_config(
        "tiny",
        [f"output_dir={out}", "grid.sources=[gt, zero, smooth]", "grid.seeds=[0, 1]", "train.steps=2",
         "evaluation.bootstrap=20", "data.patients=14",
         "data.fractions={genTrain: 0.15, genVal: 0.1, recTrain: 0.35, recVal: 0.1, recTest: 0.3}"],
    )  # fmt: skip
    result = run_recon_grid(config, log_fn=lambda _: None)
    assert len(result.rows) == 6
    client = MlflowClient(result.tracking_uri)
    tags = {"mlflow.parentRunId": result.parent_run_id, "phaselab.role": "trial", "phaselab.source": "gt"}
    tags |= {"phaselab.acceleration": "4", "phaselab.num_acs": "4", "phaselab.seed": "7"}
    running = client.create_run(result.experiment_id, tags=tags, run_name="R4 n4 gt s7").info.run_id
    client.log_metric(running, "test_ssim", 0.99)  # a trial half way through logging: not in the tables
    assert report.main(["--tracking-uri", result.tracking_uri]) == 0
    return result, client, out / "analysis" / result.parent_run_id


def _children(client, result):
    query = f"tags.`mlflow.parentRunId` = '{result.parent_run_id}' and tags.`phaselab.role` = 'trial'"
    runs = client.search_runs([result.experiment_id], query)
    return [r for r in runs if r.info.status == "FINISHED"]


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _rows(out):
    return {
        (r["source"], int(r["acceleration"]), int(r["num_acs"])): r
        for r in _csv(out / "tables" / "test_metrics.csv")
    }


def test_table_is_the_child_runs_aggregates_with_the_best_marked(analysed):
    result, client, out = analysed
    rows = _rows(out)
    assert set(rows) == {("gt", 4, 4), ("zero", 4, 4), ("smooth", 4, 4), ("zero_filled", 4, 4)}
    children = _children(client, result)
    assert len(children) == 6
    for metric in DECIMALS:
        by_source = defaultdict(list)
        for run in children:
            by_source[run.data.tags["phaselab.source"]].append(run.data.metrics[f"test_{metric}"])
        for source, values in by_source.items():
            row = rows[source, 4, 4]
            assert int(row["seeds"]) == 2 and int(row["volumes"]) == 4
            assert float(row[f"{metric}_mean"]) == pytest.approx(statistics.fmean(values), rel=1e-12)
            assert float(row[f"{metric}_std"]) == pytest.approx(statistics.stdev(values), rel=1e-12)
        zero_filled = children[0].data.metrics[f"test_zf_{metric}"]
        assert float(rows["zero_filled", 4, 4][f"{metric}_mean"]) == pytest.approx(zero_filled, rel=1e-12)
        best = BETTER[metric](by_source, key=lambda s: statistics.fmean(by_source[s]))
        marked = [source for (source, _, _), row in rows.items() if row[f"{metric}_best"] == "True"]
        assert marked == [best]


def test_p_values_are_scipys_wilcoxon_on_the_per_volume_artifacts(analysed):
    result, client, out = analysed
    volumes = defaultdict(lambda: defaultdict(list))  # (source, metric) -> volume -> one value per seed
    for run in _children(client, result):
        path = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="test_per_volume.json", tracking_uri=result.tracking_uri
        )
        table = json.loads(Path(path).read_text())
        for values in table["data"]:
            row = dict(zip(table["columns"], values, strict=True))
            for metric in DECIMALS:
                volumes[run.data.tags["phaselab.source"], metric][row["volume"]].append(row[metric])
    rows = _rows(out)
    for (source, metric), per_volume in volumes.items():
        assert len(per_volume) == 4 and all(len(seeds) == 2 for seeds in per_volume.values())
        for reference in ("gt", "smooth"):
            cell = rows[source, 4, 4][f"{metric}_p_vs_{reference}"]
            if source == reference:
                assert cell == ""
                continue
            names = sorted(per_volume)
            mine = [np.mean(per_volume[v]) for v in names]
            theirs = [np.mean(volumes[reference, metric][v]) for v in names]
            assert float(cell) == pytest.approx(wilcoxon(mine, theirs).pvalue, rel=1e-12)


def _markdown_tables(text: str) -> dict[str, list[list[str]]]:
    tables, title = {}, None
    for line in text.splitlines():
        if line.startswith("### "):
            title = line[4:]
            tables[title] = []
        elif line.startswith("| ") and title:
            tables[title].append([c.strip() for c in line.strip("|").split("|")])
    return tables


def test_csv_markdown_and_latex_agree(analysed):
    _, _, out = analysed
    rows = _rows(out)
    markdown = _markdown_tables((out / "tables" / "test_metrics.md").read_text())
    latex = (out / "tables" / "test_metrics.tex").read_text()
    for metric, decimals in DECIMALS.items():
        (means_title,) = [t for t in markdown if t.startswith(f"Test {metric.upper()}") and "mean" in t]
        (p_title,) = [t for t in markdown if t.startswith(f"Test {metric.upper()}") and "p-values" in t]
        assert markdown[means_title][0][1] == "nACS 4, R 4 (2.91×)"
        for (source, cell_md), (_, p_md) in zip(
            markdown[means_title][1:], markdown[p_title][1:], strict=True
        ):
            row = rows[source, 4, 4]
            text = f"{float(row[f'{metric}_mean']):.{decimals}f} ± {float(row[f'{metric}_std']):.{decimals}f}"
            best = row[f"{metric}_best"] == "True"
            assert cell_md == (f"**{text}**" if best else text)
            tex_text = text.replace("±", r"$\pm$")
            tex_cell = rf"\textbf{{{tex_text}}}" if best else tex_text
            assert f"{source.replace('_', chr(92) + '_')} & {tex_cell} \\\\" in latex
            p_values = [row[f"{metric}_p_vs_{ref}"] for ref in ("gt", "smooth")]
            assert p_md == " / ".join("–" if p == "" else f"{float(p):.3g}" for p in p_values)
            assert p_md.replace("–", "--") in latex


def test_html_embeds_every_figure_and_the_folder_is_on_the_parent_run(analysed):
    result, client, out = analysed
    page = (out / "report.html").read_text()
    pngs = sorted((out / "figures").glob("*.png"))
    names = {p.stem for p in pngs}
    expected = {"metrics_vs_effective_acceleration", "phase_maps", "phase_unwrapped", "phase_metrics"}
    assert expected | {f"test_cases_slice{k}" for k in range(3)} == names
    assert all(p.with_suffix(".pdf").stat().st_size > 1000 for p in pngs)
    assert page.count('src="data:image/png;base64,') == len(pngs)
    for png in pngs:
        import base64

        assert base64.b64encode(png.read_bytes()).decode("ascii") in page
    assert "6 of 6 (1 running or failed)" in page and "Test SSIM" in page and "gt" in page
    assert not list(out.rglob("*.tmp"))

    def walk(path):
        for item in client.list_artifacts(result.parent_run_id, path):
            yield from walk(item.path) if item.is_dir else [item.path]

    logged = set(walk("analysis"))
    assert logged == {f"analysis/{p.relative_to(out).as_posix()}" for p in out.rglob("*") if p.is_file()}


def test_test_cases_give_each_images_nrmse(analysed):
    result, _, out = analysed
    records = _csv(out / "tables" / "test_cases.csv")
    assert {r["source"] for r in records} == {"zero_filled", "gt", "zero", "smooth"}
    assert {r["slice"] for r in records} == {"0", "1", "2"}
    gt = next(r for r in records if r["source"] == "gt" and r["slice"] == "1")
    path = mlflow.artifacts.download_artifacts(
        run_id=gt["run_id"], artifact_path="reconstructions/test_slices.npz", tracking_uri=result.tracking_uri
    )
    with np.load(path) as data:
        recon, target = data["slice1_recon"], data["slice1_target"]
    assert float(gt["nrmse"]) == pytest.approx(np.linalg.norm(recon - target) / np.linalg.norm(target))
    assert gt["seed"] == "0"


def test_no_sweep_is_an_error_naming_the_store(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default store, phaselab_runs/demo/mlflow.db, is not there
    assert report.main([]) == 2
    error = capsys.readouterr().err
    assert f"no MLflow store at {tmp_path / 'phaselab_runs' / 'demo' / 'mlflow.db'}" in error
    assert not (tmp_path / "phaselab_runs").exists()  # looking made nothing

    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    MlflowClient(uri).create_experiment("phaselab-recon-grid")
    assert report.main(["--tracking-uri", uri]) == 2
    assert re.search(
        rf"no grid sweep .* in experiment 'phaselab-recon-grid' of the MLflow store {uri}",
        capsys.readouterr().err,
    )
    assert report.main(["--tracking-uri", uri, "--experiment", "other"]) == 2
    assert "no experiment 'other'" in capsys.readouterr().err
