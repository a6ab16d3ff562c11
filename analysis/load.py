"""Find a recon-grid sweep in MLflow and read what the analysis needs: its finished trials (cell + test
metrics), their per-volume test metrics and test reconstructions, and the parent's phase-metric artifacts.

Only runs that have FINISHED with test metrics count, so a sweep that is still running is read as far as
it got. Nothing is created in the store: a missing store, experiment or sweep is a ``SweepNotFound`` that
names where it looked.
"""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per downloaded file

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from phaselab.tracking import PARENT, ROLE, Tracker, with_retries  # noqa: E402

DEFAULT_OUTPUT_DIR = Path("phaselab_runs/demo")  # the demo's (python sweeps/recon_grid.py)
DEFAULT_EXPERIMENT = "phaselab-recon-grid"
KIND = "phaselab.kind"
PER_VOLUME = "test_per_volume.json"
RECONSTRUCTIONS = "reconstructions/test_slices.npz"
TEST_METRICS = ("ssim", "psnr", "nmse", "nrmse")
# trial tags phaselab.<key> (the cell, as the trial set them) and how to read them back
CELL_TAGS = {
    "source": str,
    "acceleration": int,
    "num_acs": int,
    "seed": int,
    "center_fraction": float,
    "real_fraction": float,
    "real_only": lambda text: text == "True",
}


class SweepNotFound(RuntimeError):
    """No store, experiment or grid sweep where the analysis was told to look."""


@dataclass
class Sweep:
    tracking_uri: str
    experiment: str
    experiment_id: str
    parent_id: str
    parent_name: str
    status: str  # the parent run's: RUNNING while the sweep is, FINISHED or FAILED after
    config: dict[str, Any]  # the resolved config (config.yaml of the parent), {} if absent
    trials: list[dict[str, Any]]  # finished trials: {"cell": {...}, "run_id", "artifact_uri", test_* ...}
    unfinished: int  # trial runs not (yet) finished: running, failed or killed
    output_dir: Path | None  # the sweep's output directory when known (default home of the analysis)
    tracker: Tracker = field(repr=False)

    @property
    def sources(self) -> list[str]:
        """The grid's sources in the config's order (then any others seen in the trials)."""
        listed = list(self.config.get("grid", {}).get("sources", []))
        seen = sorted({t["cell"]["source"] for t in self.trials} - set(listed))
        return [*listed, *seen]

    @property
    def grid_trials(self) -> list[dict[str, Any]]:
        """The source x R x nACS x seed trials (not the real/synthetic mixing cells)."""
        return [t for t in self.trials if "real_fraction" not in t["cell"]]

    @property
    def mixing_trials(self) -> list[dict[str, Any]]:
        """What the mixing table is made of: the mixing cells and the plain cells they anchor on."""
        return self.trials if any("real_fraction" in t["cell"] for t in self.trials) else []


def resolve_tracking_uri(uri: str | None) -> str:
    """``None``: the demo's SQLite store; a path (a ``.db`` file or a folder holding ``mlflow.db``): that
    store; anything else (``sqlite:///...``, ``http://host:5000``, ``file:...``) as given."""
    if uri is None:
        uri = str(DEFAULT_OUTPUT_DIR)
    if "://" in uri or uri.startswith("file:"):
        return uri
    path = Path(uri)
    if path.suffix != ".db":
        path = path / "mlflow.db"
    return f"sqlite:///{path.resolve()}"


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def find_sweep(
    tracking_uri: str | None = None, experiment: str | None = None, parent_run: str | None = None
) -> Sweep:
    """The grid sweep ``parent_run`` (default: the latest grid parent run of ``experiment``)."""
    uri = resolve_tracking_uri(tracking_uri)
    experiment = experiment or DEFAULT_EXPERIMENT
    db = _sqlite_path(uri)
    if db is not None and not db.is_file():
        raise SweepNotFound(
            f"no MLflow store at {db}: run a sweep first (python sweeps/recon_grid.py) or point "
            "--tracking-uri at one"
        )
    client = MlflowClient(tracking_uri=uri)
    found = with_retries(lambda: client.get_experiment_by_name(experiment))
    if found is None or found.lifecycle_stage != "active":
        names = sorted(e.name for e in with_retries(lambda: client.search_experiments()))
        raise SweepNotFound(f"no experiment {experiment!r} in the MLflow store {uri} (it has: {names})")
    if parent_run is None:
        query = f"tags.`{ROLE}` = 'parent' and tags.`{KIND}` = 'grid'"
        runs = with_retries(
            lambda: client.search_runs(
                [found.experiment_id], query, max_results=1, order_by=["attributes.start_time DESC"]
            )
        )
        if not runs:
            raise SweepNotFound(
                f"no grid sweep (a parent run tagged {ROLE}=parent, {KIND}=grid) in experiment "
                f"{experiment!r} of the MLflow store {uri}"
            )
        parent = runs[0]
    else:
        try:
            parent = with_retries(lambda: client.get_run(parent_run))
        except MlflowException as err:
            raise SweepNotFound(f"no run {parent_run} in the MLflow store {uri}") from err
        if parent.info.experiment_id != found.experiment_id or parent.data.tags.get(ROLE) != "parent":
            raise SweepNotFound(f"run {parent_run} is not a sweep's parent run in experiment {experiment!r}")
    tracker = Tracker(uri, experiment)
    parent_id = parent.info.run_id
    config = _config(tracker, parent_id)
    trials, unfinished = _trials(tracker, parent_id)
    output_dir = (
        db.parent if db is not None else (Path(config["output_dir"]) if "output_dir" in config else None)
    )
    return Sweep(
        uri, experiment, found.experiment_id, parent_id, parent.info.run_name or parent_id,
        parent.info.status, config, trials, unfinished, output_dir, tracker,
    )  # fmt: skip


def _config(tracker: Tracker, parent_id: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = download(tracker.uri, parent_id, "config.yaml", tmp)
        return yaml.safe_load(path.read_text()) if path is not None else {}


def _cell(tags: dict[str, str]) -> dict[str, Any]:
    return {
        key: read(tags[f"phaselab.{key}"]) for key, read in CELL_TAGS.items() if f"phaselab.{key}" in tags
    }


def _trials(tracker: Tracker, parent_id: str) -> tuple[list[dict[str, Any]], int]:
    """The finished trials (their latest test metrics) in grid order, and how many are not finished."""
    runs = with_retries(
        lambda: tracker.client.search_runs(
            [tracker.experiment_id], f"tags.`{PARENT}` = '{parent_id}' and tags.`{ROLE}` = 'trial'",
            max_results=50000,
        )
    )  # fmt: skip
    trials, unfinished = [], 0
    for run in runs:
        metrics = run.data.metrics
        if run.info.status != "FINISHED" or "test_ssim" not in metrics:
            unfinished += 1
            continue
        keep = [f"test_{p}{m}" for p in ("", "zf_") for m in TEST_METRICS]
        keep += ["effective_acceleration", "train_seconds", "best_val_ssim"]
        trials.append(
            {
                "cell": _cell(run.data.tags),
                "run_id": run.info.run_id,
                "artifact_uri": run.info.artifact_uri,
                **{k: float(metrics[k]) for k in keep if k in metrics},
            }
        )
    trials.sort(key=lambda t: (json.dumps(t["cell"], sort_keys=True), t["run_id"]))
    return trials, unfinished


def download(uri: str, run_id: str, artifact: str, dst: str | Path) -> Path | None:
    """One artifact of a run into ``dst`` (None if the run has no such artifact)."""
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact, dst_path=str(dst), tracking_uri=uri
        )
    except (MlflowException, OSError):
        return None
    return Path(local)


def _download_uri(uri: str, artifact_uri: str, artifact: str, dst: Path) -> Path | None:
    """By the run's artifact URI: no tracking-store query, so downloads can run in threads."""
    dst.mkdir(parents=True, exist_ok=True)
    try:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{artifact_uri.rstrip('/')}/{artifact}", dst_path=str(dst), tracking_uri=uri
        )
    except (MlflowException, OSError):
        return None
    return Path(local)


def read_table(path: Path) -> list[dict[str, Any]]:
    """Rows of an MLflow ``log_table`` JSON file ({"columns": [...], "data": [[...], ...]})."""
    payload = json.loads(path.read_text())
    return [dict(zip(payload["columns"], row, strict=True)) for row in payload["data"]]


def per_volume(sweep: Sweep, trials: list[dict[str, Any]], workdir: Path) -> dict[str, list[dict]]:
    """run id -> the trial's per-test-volume metrics (volume, ssim, psnr, nrmse, zf_* ...)."""

    def one(trial: dict[str, Any]) -> tuple[str, list[dict]]:
        path = _download_uri(sweep.tracking_uri, trial["artifact_uri"], PER_VOLUME, workdir / trial["run_id"])
        return trial["run_id"], read_table(path) if path is not None else []

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, trials))


def reconstructions(sweep: Sweep, trial: dict[str, Any], workdir: Path) -> dict[str, np.ndarray] | None:
    """The trial's reconstructions of the fixed test slices (slice{k}_target/_recon/_zero_filled/_mask/
    _name), or None if it logged none."""
    path = _download_uri(
        sweep.tracking_uri, trial["artifact_uri"], RECONSTRUCTIONS, workdir / trial["run_id"]
    )
    if path is None:
        return None
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def phase_metric_rows(sweep: Sweep) -> list[dict[str, Any]] | None:
    """The parent's phase-metric table (a row per source), or None if the sweep has none."""
    with tempfile.TemporaryDirectory() as tmp:
        path = download(sweep.tracking_uri, sweep.parent_id, "phase_metrics/table.json", tmp)
        return json.loads(path.read_text()) if path is not None else None


def phase_samples(sweep: Sweep) -> dict[str, np.ndarray] | None:
    """Magnitude, acquired phase and phase_<source> of three fixed recTrain slices, or None."""
    with tempfile.TemporaryDirectory() as tmp:
        path = download(sweep.tracking_uri, sweep.parent_id, "phase_metrics/samples.npz", tmp)
        if path is None:
            return None
        with np.load(path) as data:
            return {key: data[key] for key in data.files}


def expected_trials(sweep: Sweep) -> int | None:
    """How many trials the sweep's config asks for (None if its config cannot be read back)."""
    if not sweep.config:
        return None
    try:
        from phaselab.config.loading import from_dict
        from phaselab.config.schema import SweepConfig
        from phaselab.orchestration.grid import grid_cells

        return len(grid_cells(from_dict(SweepConfig, sweep.config)))
    except Exception:  # an older or hand-edited config: the report just says less
        return None
