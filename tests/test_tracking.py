"""phaselab.tracking on a real SQLite MLflow: parent and child runs, idempotent logging, failures, retries."""

import json
import time

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST

from phaselab.tracking import (
    ERROR,
    PARENT,
    ROLE,
    SWEEP_KEY,
    TRIAL_KEY,
    Tracker,
    column_key,
    runs_page_url,
    with_retries,
)


@pytest.fixture(scope="module")
def db_uri(tmp_path_factory):
    """One database for the module (creating one costs seconds); each test has its own experiment."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture
def tracker(db_uri, request):
    return Tracker(db_uri, request.node.name)


def _status(tracker, run_id):
    return tracker.client.get_run(run_id).info.status


def test_parent_run_is_found_again_by_sweep_key(tracker):
    run_id, resumed = tracker.parent_run("key-a", "sweep-a", tags={"phaselab.kind": "grid", "n": 3})
    assert resumed is False
    run = tracker.client.get_run(run_id)
    assert run.data.tags[SWEEP_KEY] == "key-a"
    assert run.data.tags[ROLE] == "parent"
    assert run.data.tags["phaselab.kind"] == "grid"
    assert run.data.tags["n"] == "3"
    assert run.info.run_name == "sweep-a"

    again, resumed = tracker.parent_run("key-a", "sweep-a")
    assert (again, resumed) == (run_id, True)
    other, resumed = tracker.parent_run("key-b", "sweep-b")
    assert other != run_id and resumed is False
    parents = tracker.find_runs({ROLE: "parent"})
    assert sorted(r.info.run_id for r in parents) == sorted([run_id, other])


def test_parent_run_reopens_a_finished_run(tracker):
    run_id, _ = tracker.parent_run("key", "sweep")
    tracker.end_run(run_id, "FINISHED")
    assert _status(tracker, run_id) == "FINISHED"
    again, resumed = tracker.parent_run("key", "sweep")
    assert (again, resumed) == (run_id, True)
    assert _status(tracker, run_id) == "RUNNING"


def test_parent_run_reopens_a_failed_run_and_clears_its_error(tracker):
    run_id, _ = tracker.parent_run("key", "sweep")
    tracker.mark_failed(run_id, RuntimeError("boom"))
    again, resumed = tracker.parent_run("key", "sweep")
    assert (again, resumed) == (run_id, True)
    run = tracker.client.get_run(run_id)
    assert run.info.status == "RUNNING"
    assert ERROR not in run.data.tags


def test_child_runs_returns_the_newest_child_per_trial_key(tracker):
    parent, _ = tracker.parent_run("key", "sweep")
    other_parent, _ = tracker.parent_run("other", "sweep2")
    old_a = tracker.start_child(parent, "a", "a-old", {"phaselab.seed": 0})
    time.sleep(0.01)  # start times are milliseconds
    b = tracker.start_child(parent, "b", "b", {})
    time.sleep(0.01)
    new_a = tracker.start_child(parent, "a", "a-new", {})
    tracker.start_child(other_parent, "a", "elsewhere", {})

    children = tracker.child_runs(parent)
    assert set(children) == {"a", "b"}
    assert children["a"].info.run_id == new_a != old_a
    assert children["b"].info.run_id == b
    assert children["a"].data.tags[PARENT] == parent
    assert children["a"].data.tags[TRIAL_KEY] == "a"
    assert children["a"].data.tags[ROLE] == "trial"
    assert tracker.client.get_run(old_a).data.tags["phaselab.seed"] == "0"  # str() of a non-string tag

    tracker.delete_run(new_a)  # deleted runs are not found: the older one is the newest again
    assert tracker.child_runs(parent)["a"].info.run_id == old_a
    assert tracker.child_runs(b) == {}


def test_log_params_is_idempotent(tracker):
    run_id, _ = tracker.parent_run("key", "sweep")
    tracker.log_params(run_id, {"lr": 0.001, "cascades": 4})
    tracker.log_params(run_id, {"lr": 0.001, "cascades": 4})  # MLflow itself would accept this too
    # A changed value under a logged key would make MLflow raise: the second call must skip it.
    tracker.log_params(run_id, {"lr": 0.5, "chans": 8})
    assert tracker.client.get_run(run_id).data.params == {"lr": "0.001", "cascades": "4", "chans": "8"}


def test_last_logged_step_is_the_highest_step_of_any_metric(tracker):
    run_id, _ = tracker.parent_run("key", "sweep")
    assert tracker.last_logged_step(run_id) == -1
    tracker.log_metrics(run_id, {"loss": 1.0}, step=0)
    assert tracker.last_logged_step(run_id) == 0
    tracker.log_metrics(run_id, {"val_ssim": 0.5}, step=7)
    tracker.log_metrics(run_id, {"loss": 0.5}, step=3)
    tracker.log_metrics(run_id, {"val_ssim": 0.6}, step=5)  # the latest value is not the highest step
    assert tracker.last_logged_step(run_id) == 7


@pytest.mark.parametrize(
    ("error", "status"),
    [(RuntimeError("out of memory"), "FAILED"), (KeyboardInterrupt(), "KILLED"), (SystemExit(1), "KILLED")],
)
def test_mark_failed_and_reopen_run(tracker, error, status):
    run_id, _ = tracker.parent_run("key", "sweep")
    tracker.mark_failed(run_id, error)
    run = tracker.client.get_run(run_id)
    assert run.info.status == status
    assert run.data.tags[ERROR] == f"{type(error).__name__}: {error}"

    tracker.reopen_run(run_id)
    run = tracker.client.get_run(run_id)
    assert run.info.status == "RUNNING"
    assert ERROR not in run.data.tags
    tracker.reopen_run(run_id)  # no error tag to remove: still fine
    assert _status(tracker, run_id) == "RUNNING"


def test_mark_failed_truncates_long_errors_and_never_raises(tracker):
    run_id, _ = tracker.parent_run("key", "sweep")
    tracker.mark_failed(run_id, ValueError("x" * 5000))
    assert len(tracker.client.get_run(run_id).data.tags[ERROR]) == 1000
    tracker.mark_failed("0" * 32, ValueError("no such run"))  # a tracking error is only logged


def test_closed_on_error_marks_the_run_and_reraises(tracker):
    run_id, _ = tracker.parent_run("key", "sweep")
    with pytest.raises(ZeroDivisionError), tracker.closed_on_error(run_id):
        1 / 0  # noqa: B018
    run = tracker.client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags[ERROR] == "ZeroDivisionError: division by zero"

    tracker.reopen_run(run_id)
    with pytest.raises(KeyboardInterrupt), tracker.closed_on_error(run_id):
        raise KeyboardInterrupt
    assert _status(tracker, run_id) == "KILLED"

    tracker.reopen_run(run_id)
    with tracker.closed_on_error(run_id):
        pass
    assert _status(tracker, run_id) == "RUNNING"  # no error: the caller ends the run


class Flaky:
    """Fails ``failures`` times with ``error``, then returns ``"ok"``."""

    def __init__(self, failures, error):
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def test_with_retries_retries_transient_errors():
    call = Flaky(2, MlflowException("database is locked"))
    assert with_retries(call, attempts=3, delay=0) == "ok"
    assert call.calls == 3


def test_with_retries_gives_up_after_attempts():
    call = Flaky(10, MlflowException("database is locked"))
    with pytest.raises(MlflowException, match="database is locked"):
        with_retries(call, attempts=3, delay=0)
    assert call.calls == 3

    call = Flaky(10, ConnectionError("refused"))
    with pytest.raises(ConnectionError):
        with_retries(call, attempts=1, delay=0)
    assert call.calls == 1


def test_with_retries_does_not_retry_missing_resources_or_other_errors(tracker):
    calls = []

    def get_missing_run():
        calls.append(1)
        return tracker.client.get_run("0" * 32)

    with pytest.raises(MlflowException, match="not found"):
        with_retries(get_missing_run, attempts=5, delay=0)
    assert len(calls) == 1

    missing = Flaky(10, MlflowException("no run", error_code=RESOURCE_DOES_NOT_EXIST))
    with pytest.raises(MlflowException):
        with_retries(missing, attempts=5, delay=0)
    assert missing.calls == 1

    calls.clear()

    def register_again():
        calls.append(1)
        return tracker.client.create_registered_model(f"model-{tracker.experiment_id}")

    register_again()
    with pytest.raises(MlflowException, match="already exists"):
        with_retries(register_again, attempts=5, delay=0)
    assert len(calls) == 2  # the first registration and one try of the second

    bug = Flaky(10, KeyError("not a tracking error"))
    with pytest.raises(KeyError):
        with_retries(bug, attempts=5, delay=0)
    assert bug.calls == 1


def test_tracker_reuses_and_restores_its_experiment(db_uri):
    first = Tracker(db_uri, "restored-exp")
    assert Tracker(db_uri, "restored-exp").experiment_id == first.experiment_id
    assert Tracker(db_uri, "restored-other").experiment_id != first.experiment_id
    first.client.delete_experiment(first.experiment_id)
    restored = Tracker(db_uri, "restored-exp")
    assert restored.experiment_id == first.experiment_id
    assert restored.client.get_experiment(first.experiment_id).lifecycle_stage == "active"


def test_log_summary_logs_a_value_once_and_a_changed_value_again(tracker):
    parent, _ = tracker.parent_run("summary", "summary")
    tracker.log_summary(parent, {"best": 0.5, "trials": 3})
    tracker.log_summary(parent, {"best": 0.5, "trials": 3})  # a rerun with the same result
    assert [m.value for m in tracker.client.get_metric_history(parent, "best")] == [0.5]
    tracker.log_summary(parent, {"best": 0.6, "trials": 3})
    assert [m.value for m in tracker.client.get_metric_history(parent, "best")] == [0.5, 0.6]
    assert len(tracker.client.get_metric_history(parent, "trials")) == 1


def test_bad_requests_are_not_retried():
    calls = []

    def bad_request():
        calls.append(1)
        raise MlflowException("no", error_code=INVALID_PARAMETER_VALUE)

    with pytest.raises(MlflowException):
        with_retries(bad_request, attempts=4, delay=0)
    assert len(calls) == 1


def test_log_table_replaces_an_earlier_table_of_the_same_name(tracker):
    parent, _ = tracker.parent_run("table", "table")
    tracker.log_table(parent, [{"a": 1}, {"a": 2}], "grid/rows.json")
    tracker.log_table(parent, [{"a": 3}], "grid/rows.json")  # a refresh, or a rerun of a finished sweep
    assert tracker.load_json_artifact(parent, "grid/rows.json") == {"columns": ["a"], "data": [[3]]}
    tags = tracker.client.get_run(parent).data.tags
    assert json.loads(tags["mlflow.loggedArtifacts"]) == [{"path": "grid/rows.json", "type": "table"}]


def test_runs_view_is_saved_once_in_the_uis_format(tracker):
    columns = [column_key("tags", "R"), column_key("metrics", "test_ssim")]
    tracker.save_runs_view("v1", "R and SSIM", columns)
    tag = tracker.client.get_experiment(tracker.experiment_id).tags["mlflow.sharedViewState.v1"]
    envelope = json.loads(tag)
    assert envelope["name"] == "R and SSIM" and envelope["createdAt"] == envelope["updatedAt"] > 0
    assert json.loads(envelope["state"]) == {"selectedColumns": ["tags.`R`", "metrics.`test_ssim`"]}
    tracker.save_runs_view("v1", "other", [])  # a view the user edited in the UI is kept
    assert tracker.client.get_experiment(tracker.experiment_id).tags["mlflow.sharedViewState.v1"] == tag
    assert runs_page_url("http://127.0.0.1:5000/", "7", "v1") == (
        "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning&viewStateShareKey=v1"
    )


def test_a_dataset_logged_by_a_concurrent_trial_first_is_linked_not_an_error(tracker, monkeypatch):
    run_id, _ = tracker.parent_run("datasets", "datasets")
    real = tracker.client.log_inputs
    calls = []

    def racing(run, datasets):  # another trial inserted the same dataset between lookup and insert
        calls.append(run)
        if len(calls) == 1:
            real(tracker.parent_run("other", "other")[0], datasets=datasets)
            raise MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.digest")
        return real(run, datasets=datasets)

    monkeypatch.setattr(tracker.client, "log_inputs", racing)
    tracker.log_dataset(run_id, "gt recTrain", "d" * 40, "/data/gt", "training")
    assert len(calls) == 2
    (logged,) = tracker.client.get_run(run_id).inputs.dataset_inputs
    assert (logged.dataset.name, logged.dataset.digest) == ("gt recTrain", "d" * 36)

    def broken(run, datasets):
        raise MlflowException("disk I/O error", error_code=INVALID_PARAMETER_VALUE)

    monkeypatch.setattr(tracker.client, "log_inputs", broken)
    with pytest.raises(MlflowException, match="disk I/O"):  # anything else is not swallowed
        tracker.log_dataset(run_id, "zero recTrain", "e" * 40, "/data/zero", "training")
