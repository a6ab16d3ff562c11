"""MLflow tracking: one parent run per sweep, one nested child run per trial, idempotent logging.

Everything goes through ``MlflowClient`` with explicit run ids (no global "active run"), so the same
calls work in the driver, in Tune trials and in Ray Train workers, and a resumed sweep can find the
runs it already made by their tags instead of logging them twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow  # noqa: E402
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

log = logging.getLogger(__name__)
# "Creating initial MLflow database tables..." on every new database is not news for a user
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
T = TypeVar("T")

SWEEP_KEY = "phaselab.sweep_key"
TRIAL_KEY = "phaselab.trial_key"
ROLE = "phaselab.role"
PARENT = "mlflow.parentRunId"
ERROR = "phaselab.error"  # why a run ended FAILED/KILLED; removed when the run is resumed
LOGGED_ARTIFACTS = "mlflow.loggedArtifacts"  # MLflow's own tag listing a run's table artifacts
NOTE = "mlflow.note.content"  # a run's (or experiment's) description in the MLflow UI
# The experiment is model training, not a GenAI app. MLflow UIs without the GenAI / Model training
# switch read this tag; 3.17's takes the workflow from its sidebar switch (kept in the browser, GenAI at
# first: an experiment opens on the GenAI "Overview") or from the URL parameter below, which links carry.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
ML_WORKFLOW = "workflowType=machine_learning"
# A saved view of the runs page: an experiment tag per view (the UI's "Views" menu), opened by
# ?viewStateShareKey=<id>; its value is MLflow's envelope {name, createdAt, updatedAt, state}.
SAVED_VIEW = "mlflow.sharedViewState."
# MLflow error codes that a retry cannot change (a missing or existing resource, a bad request)
PERMANENT_ERRORS = (
    "RESOURCE_DOES_NOT_EXIST",
    "RESOURCE_ALREADY_EXISTS",
    "INVALID_PARAMETER_VALUE",
    "BAD_REQUEST",
    "PERMISSION_DENIED",
    "INVALID_STATE",
)


def default_tracking_uri(output_dir: str | Path) -> str:
    """A SQLite database in the output directory (absolute path, as MLflow requires)."""
    return f"sqlite:///{Path(output_dir).resolve() / 'mlflow.db'}"


def with_retries(call: Callable[[], T], *, attempts: int = 5, delay: float = 0.5, what: str = "MLflow") -> T:
    """Retry a tracking call on transient errors (server restarts, SQLite busy) with backoff."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except (MlflowException, OSError, ConnectionError) as err:
            code = str(getattr(err, "error_code", ""))
            transient = not any(c in code for c in PERMANENT_ERRORS)
            if attempt == attempts or not transient:
                raise
            log.warning("%s call failed (%s); retry %d/%d", what, err, attempt, attempts - 1)
            time.sleep(delay * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


class Tracker:
    """Thin wrapper around MlflowClient for one experiment."""

    def __init__(self, uri: str, experiment: str, artifact_root: str | Path | None = None):
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        self.experiment_name = experiment
        self.experiment_id = self._experiment_id(experiment, artifact_root)

    def _experiment_id(self, name: str, artifact_root: str | Path | None) -> str:
        found = with_retries(lambda: self.client.get_experiment_by_name(name))
        if found is not None:
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            if found.tags.get(EXPERIMENT_KIND[0]) != EXPERIMENT_KIND[1]:
                with_retries(lambda: self.client.set_experiment_tag(found.experiment_id, *EXPERIMENT_KIND))
            return found.experiment_id
        # A tracking server stores artifacts where it was told (--artifacts-destination), via its proxy.
        served = self.uri.startswith(("http://", "https://"))
        location = Path(artifact_root).resolve().as_uri() if artifact_root and not served else None
        try:
            return self.client.create_experiment(
                name, artifact_location=location, tags=dict([EXPERIMENT_KIND])
            )
        except MlflowException:  # created concurrently by another process
            return self.client.get_experiment_by_name(name).experiment_id

    def save_runs_view(self, view_id: str, name: str, columns: list[str]) -> None:
        """A saved view of the experiment's runs table showing ``columns`` (``column_key``s), set once: a
        view a user changed in the UI ("Overwrite view") is kept."""
        found = with_retries(lambda: self.client.get_experiment(self.experiment_id))
        if SAVED_VIEW + view_id in found.tags:
            return
        now = int(time.time() * 1000)
        state = json.dumps({"selectedColumns": list(columns)})
        envelope = json.dumps({"name": name, "createdAt": now, "updatedAt": now, "state": state})
        with_retries(
            lambda: self.client.set_experiment_tag(self.experiment_id, SAVED_VIEW + view_id, envelope)
        )

    def describe_experiment(self, text: str) -> None:
        """The experiment's description (the UI shows it above the runs), set once."""
        found = with_retries(lambda: self.client.get_experiment(self.experiment_id))
        if NOTE not in found.tags:
            with_retries(lambda: self.client.set_experiment_tag(self.experiment_id, NOTE, text))

    # runs --------------------------------------------------------------------------------------
    def find_runs(self, tags: dict[str, str]) -> list[Any]:
        query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        return with_retries(
            lambda: self.client.search_runs([self.experiment_id], filter_string=query, max_results=5000)
        )

    def parent_run(self, sweep_key: str, name: str, tags: dict[str, str] | None = None) -> tuple[str, bool]:
        """Return (run id, resumed): the sweep's existing parent run, or a new one."""
        existing = self.find_runs({SWEEP_KEY: sweep_key, ROLE: "parent"})
        if existing:
            run_id = existing[0].info.run_id
            self.reopen_run(run_id)
            return run_id, True
        all_tags = {SWEEP_KEY: sweep_key, ROLE: "parent", **{k: str(v) for k, v in (tags or {}).items()}}
        run = with_retries(lambda: self.client.create_run(self.experiment_id, tags=all_tags, run_name=name))
        return run.info.run_id, False

    def child_runs(self, parent_id: str, role: str | None = "trial") -> dict[str, Any]:
        """Trial key -> newest child run of the parent with that ``phaselab.role`` (None: any role);
        deleted runs are not returned by search."""
        runs = self.find_runs({PARENT: parent_id, **({ROLE: role} if role else {})})
        by_key: dict[str, Any] = {}
        for run in sorted(runs, key=lambda r: r.info.start_time or 0):
            key = run.data.tags.get(TRIAL_KEY)
            if key:
                by_key[key] = run
        return by_key

    def start_child(self, parent_id: str, trial_key: str, name: str, tags: dict[str, str]) -> str:
        # str(): the REST store (a tracking server) rejects non-string tag values; SQLite coerces them
        all_tags = {PARENT: parent_id, TRIAL_KEY: trial_key, ROLE: "trial"}
        all_tags.update({k: str(v) for k, v in tags.items()})
        run = with_retries(lambda: self.client.create_run(self.experiment_id, tags=all_tags, run_name=name))
        return run.info.run_id

    def copy_run(self, source_id: str, parent_id: str, trial_key: str) -> str:
        """A child of ``parent_id`` that repeats a finished run of another sweep (same trial: same inputs,
        model and training), so one parent shows its whole grid: params, tags, every metric's history,
        and a link to the original, which keeps the artifacts."""
        source = with_retries(lambda: self.client.get_run(source_id))
        keep = {k: v for k, v in source.data.tags.items() if not k.startswith("mlflow.")}
        keep.update({"phaselab.reused_from": source_id, ROLE: "trial"})
        run_id = self.start_child(parent_id, trial_key, source.info.run_name, keep)
        self.describe_run(
            run_id,
            f"Reused from run {source_id} of an earlier sweep: the same trial (inputs, model, training) "
            "was not trained again. Its checkpoint, reconstructions and per-volume table are there. "
            + source.data.tags.get(NOTE, ""),
        )
        self.log_params(run_id, dict(source.data.params))
        metrics = []
        for key in source.data.metrics:
            metrics += with_retries(lambda key=key: self.client.get_metric_history(source_id, key))
        for start in range(0, len(metrics), 900):  # log_batch takes at most 1000 metrics
            chunk = metrics[start : start + 900]
            with_retries(lambda chunk=chunk: self.client.log_batch(run_id, metrics=chunk))
        self.end_run(run_id, "FINISHED")
        return run_id

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        with_retries(lambda: self.client.set_terminated(run_id, status=status))

    def reopen_run(self, run_id: str) -> None:
        """A resumed run (retried trial, rerun sweep) is RUNNING again, whatever its last status."""
        if ERROR in with_retries(lambda: self.client.get_run(run_id)).data.tags:
            with_retries(lambda: self.client.delete_tag(run_id, ERROR))
        with_retries(lambda: self.client.update_run(run_id, status="RUNNING"))

    def mark_failed(self, run_id: str, err: BaseException) -> None:
        """End a run whose code raised: KILLED for Ctrl-C/SystemExit, else FAILED; the error as a tag.
        Never raises, so a tracking error cannot hide the original one."""
        status = "KILLED" if isinstance(err, KeyboardInterrupt | SystemExit) else "FAILED"
        try:
            self.set_tags(run_id, {ERROR: f"{type(err).__name__}: {err}"[:1000]})
            self.end_run(run_id, status)
        except Exception:
            log.warning("could not mark MLflow run %s %s", run_id, status, exc_info=True)

    @contextlib.contextmanager
    def closed_on_error(self, run_id: str) -> Iterator[None]:
        """Leave no run RUNNING when the code logging to it raises or is interrupted."""
        try:
            yield
        except BaseException as err:
            self.mark_failed(run_id, err)
            raise

    def delete_run(self, run_id: str) -> None:
        with_retries(lambda: self.client.delete_run(run_id))

    # logging -----------------------------------------------------------------------------------
    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Log params once; a resumed run re-logging identical values is a no-op."""
        logged = with_retries(lambda: self.client.get_run(run_id)).data.params
        fresh = [Param(k, str(v)[:6000]) for k, v in params.items() if k not in logged]
        if fresh:
            with_retries(lambda: self.client.log_batch(run_id, params=fresh))

    def describe_run(self, run_id: str, text: str) -> None:
        """The run's description (``mlflow.note.content``, the UI's "Description")."""
        self.set_tags(run_id, {NOTE: text})

    def log_dataset(self, run_id: str, name: str, digest: str, source: str, context: str) -> None:
        """A dataset the run used (the UI's "Datasets" column): a split of phase-source k-space, its
        content digest, where it lies, and ``context`` (training / validation / test)."""
        dataset = Dataset(name=name, digest=digest[:36], source_type="local", source=source)
        inputs = [DatasetInput(dataset, tags=[InputTag("mlflow.data.context", context)])]
        for attempt in range(3):
            try:
                with_retries(lambda: self.client.log_inputs(run_id, datasets=inputs))
                return
            except MlflowException as err:
                # Trials of one source log the same dataset at once: both find it missing, one insert
                # wins and the other fails on the unique key (SQLite "UNIQUE constraint failed",
                # PostgreSQL "duplicate key"). Logging again finds the row and only links it to the run.
                text = str(err).lower()
                if attempt == 2 or not ("unique constraint" in text or "duplicate key" in text):
                    raise
                time.sleep(0.2 * (attempt + 1))

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        batch = [RunTag(k, str(v)) for k, v in tags.items()]
        with_retries(lambda: self.client.log_batch(run_id, tags=batch))

    def last_logged_step(self, run_id: str) -> int:
        """Highest step of any metric of the run (-1 if none): a resumed trial logs only later steps."""
        metrics = with_retries(lambda: self.client.get_run(run_id)).data.metrics
        steps = [-1]
        for key in metrics:
            history = with_retries(lambda key=key: self.client.get_metric_history(run_id, key))
            steps.extend(m.step for m in history)
        return max(steps)

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        with_retries(lambda: self.client.log_batch(run_id, metrics=batch))

    def log_summary(self, run_id: str, metrics: dict[str, float]) -> None:
        """Summary values at step 0, one per run: a rerun that reaches the same values logs nothing (a
        changed value is appended and shown as the latest)."""
        latest = with_retries(lambda: self.client.get_run(run_id)).data.metrics
        fresh = {k: v for k, v in metrics.items() if k not in latest or float(latest[k]) != float(v)}
        if fresh:
            self.log_metrics(run_id, fresh, step=0)

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        with_retries(lambda: self.client.log_artifact(run_id, str(path), artifact_path))

    def log_artifacts(self, run_id: str, folder: str | Path, artifact_path: str | None = None) -> None:
        with_retries(lambda: self.client.log_artifacts(run_id, str(folder), artifact_path))

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        with_retries(lambda: self.client.log_text(run_id, text, artifact_file))

    def log_dict(self, run_id: str, data: Any, artifact_file: str) -> None:
        with_retries(lambda: self.client.log_dict(run_id, data, artifact_file))

    def log_table(self, run_id: str, rows: Iterable[dict[str, Any]], artifact_file: str) -> None:
        """A table artifact in MLflow's format (the UI renders it), *replacing* an earlier one of that name:
        MlflowClient.log_table appends to an existing file, so every refresh of a grid (and every rerun
        of a finished sweep) would add its rows again."""
        import pandas as pd

        frame = pd.DataFrame(list(rows))
        folder, name = posixpath.split(artifact_file)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            frame.to_json(path, orient="split", index=False, date_format="iso")
            self.log_artifact(run_id, path, folder or None)
        run = with_retries(lambda: self.client.get_run(run_id))
        logged = json.loads(run.data.tags.get(LOGGED_ARTIFACTS, "[]"))
        if {"path": artifact_file, "type": "table"} not in logged:  # how the UI knows it is a table
            logged.append({"path": artifact_file, "type": "table"})
            self.set_tags(run_id, {LOGGED_ARTIFACTS: json.dumps(logged)})

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        with_retries(lambda: self.client.log_figure(run_id, figure, artifact_file))

    def load_json_artifact(self, run_id: str, artifact_file: str) -> Any:
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=artifact_file, dst_path=tmp, tracking_uri=self.uri
            )
            return json.loads(Path(local).read_text())


def column_key(kind: str, name: str) -> str:
    """A runs-table column as the UI names it: ``column_key("tags", "R")`` is ``tags.`R```; kind is
    tags, params, metrics or attributes."""
    return f"{kind}.`{name}`"


def runs_page_url(ui: str, experiment_id: str, view_id: str | None = None) -> str:
    """The UI's runs page of an experiment (``ui``: where the UI is, e.g. http://127.0.0.1:5000), in
    the model-training workflow, opened on a saved view if one is named."""
    query = ML_WORKFLOW + (f"&viewStateShareKey={view_id}" if view_id else "")
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (``data.fractions.genTrain``): params the UI can show and compare,
    not the Python repr of a dict."""
    if isinstance(data, dict) and data:
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: data}
