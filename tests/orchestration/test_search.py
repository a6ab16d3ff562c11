"""The one Optuna + ASHA search builder: space descriptions, the Tuner it builds, best results, restoring,
and closing the MLflow runs of trials ASHA stopped."""

import pytest
from ray import tune
from ray.tune.schedulers import AsyncHyperBandScheduler
from ray.tune.search.optuna import OptunaSearch

from phaselab.orchestration.progress import SearchProgress
from phaselab.orchestration.search import (
    SearchSettings,
    best_result,
    close_stopped_runs,
    describe_space,
    search_tuner,
)
from phaselab.tracking import Tracker

SETTINGS = SearchSettings(
    metric="up", mode="max", num_samples=3, max_t=3, grace_period=3, reduction_factor=2, max_concurrent=2
)


def test_describe_space_exact_strings():
    space = {
        "lr": tune.loguniform(5e-5, 1e-3),
        "dropout": tune.uniform(0, 0.5),
        "layers": tune.randint(2, 9),
        "width": tune.lograndint(8, 256),
        "ema": tune.choice([0.99, 0.999]),
        "mixed": tune.choice(["adam", 1]),
        "step": tune.quniform(0.0, 1.0, 0.1),
        "noise": tune.randn(1.0, 2.0),
        "path": "/data/spec.json",
    }
    assert describe_space(space) == {
        "lr": "loguniform(5e-05, 0.001)",
        "dropout": "uniform(0, 0.5)",
        "layers": "randint(2, 9)",
        "width": "lograndint(8, 256)",
        "ema": "choice([0.99, 0.999])",
        "mixed": "choice(['adam', 1])",
        "step": "quniform(0.0, 1.0, 0.1)",
        "noise": "randn(1.0, 2.0)",
        "path": "'/data/spec.json'",
    }


def test_describe_space_tells_different_spaces_apart():
    """The description is part of a search's content key: different spaces, different strings."""
    pairs = [
        (tune.quniform(0, 1, 0.1), tune.quniform(0, 1, 0.2)),
        (tune.randn(0, 1), tune.randn(0, 2)),
        (tune.uniform(1, 8), tune.randint(1, 8)),
        (tune.uniform(1, 8), tune.loguniform(1, 8)),
        (tune.randint(1, 8), tune.qrandint(1, 8, 1)),
    ]
    for a, b in pairs:
        assert describe_space({"x": a}) != describe_space({"x": b})


def _tuner_parts(tuner):
    internal = tuner._local_tuner  # Ray keeps the configs of a Tuner on its internal tuner
    return internal._tune_config, internal._run_config, internal._is_restored


def _milestones(scheduler):
    """The numbers of results at which ASHA may stop a trial (its rungs; Ray keeps them private)."""
    return sorted(milestone for milestone, _ in scheduler._brackets[0]._rungs)


def test_search_tuner_configures_optuna_and_asha(tmp_path):
    settings = SearchSettings(
        metric="val_loss",
        mode="min",
        num_samples=5,
        max_t=9,
        grace_period=2,
        reduction_factor=3,
        max_concurrent=4,
        seed=7,
    )
    lines = []
    tuner = search_tuner(
        lambda config: None,
        {"x": tune.uniform(0, 1)},
        settings,
        storage=str(tmp_path),
        name="search-a",
        log_fn=lines.append,
    )
    tune_config, run_config, restored = _tuner_parts(tuner)
    assert not restored and lines == []
    assert (tune_config.metric, tune_config.mode, tune_config.num_samples) == ("val_loss", "min", 5)
    assert tune_config.max_concurrent_trials == 4
    assert tune_config.reuse_actors is False
    assert isinstance(tune_config.search_alg, OptunaSearch)
    assert tune_config.search_alg._seed == 7
    scheduler = tune_config.scheduler
    assert isinstance(scheduler, AsyncHyperBandScheduler)
    assert scheduler._time_attr == "training_iteration"
    assert scheduler._max_t == 9
    assert scheduler._reduction_factor == 3
    assert _milestones(scheduler) == [2, 6]  # grace period 2, then x3 below max_t
    assert (run_config.name, run_config.storage_path) == ("search-a", str(tmp_path))
    (progress,) = run_config.callbacks
    assert isinstance(progress, SearchProgress)
    assert (progress.total, progress.metric, progress.mode) == (5, "val_loss", "min")
    assert progress.log_fn == lines.append


@pytest.mark.parametrize(
    ("max_t", "grace_period", "milestones"), [(3, 10, [3]), (0, 2, [1]), (4, 0, [1, 2, 4])]
)
def test_search_tuner_clamps_the_grace_period_to_max_t(tmp_path, max_t, grace_period, milestones):
    settings = SearchSettings("m", "max", 2, max_t, grace_period, 2, 1)
    tuner = search_tuner(lambda config: None, {}, settings, storage=str(tmp_path), name="s")
    scheduler = _tuner_parts(tuner)[0].scheduler
    assert scheduler._max_t == max(1, max_t)
    assert _milestones(scheduler) == milestones


def _trainable(config):
    """Two metrics whose best value over a trial is not its last one, in opposite order across trials."""
    from ray import tune

    x = config["x"]
    for up, down in [(x, 0.0), (2.0 + x, -2.0 - x), (1.0 - x, 1.0 + x)]:
        tune.report({"up": up, "down": down})


@pytest.fixture(scope="module")
def finished_search(ray_session, tmp_path_factory):
    """A real three-trial search with known metric histories."""
    storage = tmp_path_factory.mktemp("ray_results")
    lines = []
    tuner = search_tuner(
        _trainable,
        {"x": tune.uniform(0, 1)},
        SETTINGS,
        storage=str(storage),
        name="search-k",
        log_fn=lines.append,
    )
    return storage, tuner.fit(), lines


@pytest.mark.ray
def test_best_result_over_all_evaluations(finished_search):
    _, results, lines = finished_search
    assert len(results) == 3 and not results.errors
    xs = sorted(r.config["x"] for r in results)
    assert len(set(xs)) == 3
    for r in results:
        assert list(r.metrics_dataframe["up"]) == pytest.approx(
            [r.config["x"], 2 + r.config["x"], 1 - r.config["x"]]
        )

    # max: the peak 2 + x favours the largest x (the last value, 1 - x, would favour the smallest)
    config, value = best_result(results, SETTINGS)
    assert config["x"] == xs[-1]
    assert value == pytest.approx(2 + xs[-1])
    # min: the lowest value -2 - x favours the largest x (the last value, 1 + x, the smallest)
    config, value = best_result(results, SearchSettings("down", "min", 3, 3, 3, 2, 2))
    assert config["x"] == xs[-1]
    assert value == pytest.approx(-2 - xs[-1])

    assert len(lines) == 3  # one progress line per finished trial
    assert [line.split("]")[0] for line in lines] == ["[1/3", "[2/3", "[3/3"]
    # each trial's best evaluation (not its last), and the best of all by the last line
    scores = sorted(float(line.split("up ")[1].split(" after 3 evaluation(s)")[0]) for line in lines)
    assert scores == pytest.approx([2 + x for x in xs], abs=1e-3)
    assert lines[-1].split("best so far ")[1].startswith(f"{2 + xs[-1]:.4g} (")


@pytest.mark.ray
def test_same_storage_and_name_restores_the_search(finished_search):
    storage, results, _ = finished_search
    lines = []
    tuner = search_tuner(
        _trainable,
        {"x": tune.uniform(0, 1)},
        SETTINGS,
        storage=str(storage),
        name="search-k",
        log_fn=lines.append,
    )
    assert _tuner_parts(tuner)[2] is True
    assert lines == [f"resuming the search in {storage}/search-k"]
    restored = tuner.fit()  # a finished search: no new trials, the same results
    assert sorted(r.config["x"] for r in restored) == sorted(r.config["x"] for r in results)
    assert best_result(restored, SETTINGS) == best_result(results, SETTINGS)
    assert lines[1:] == []  # no trial ran again

    other = search_tuner(
        _trainable, {"x": tune.uniform(0, 1)}, SETTINGS, storage=str(storage), name="search-other"
    )
    assert _tuner_parts(other)[2] is False


def _child(tracker, parent_id, key, status):
    run_id = tracker.start_child(parent_id, key, key, {})
    if status != "RUNNING":
        tracker.end_run(run_id, status)
    return run_id


def test_close_stopped_runs_ends_running_children_killed(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "exp")
    parent, _ = tracker.parent_run("search", "search")
    other_parent, _ = tracker.parent_run("other", "other")
    stopped = [_child(tracker, parent, f"stopped-{i}", "RUNNING") for i in range(2)]
    finished = _child(tracker, parent, "finished", "FINISHED")
    failed = _child(tracker, parent, "failed", "FAILED")
    elsewhere = _child(tracker, other_parent, "elsewhere", "RUNNING")

    assert close_stopped_runs(tracker, parent) == 2
    for run_id in stopped:
        run = tracker.client.get_run(run_id)
        assert run.info.status == "KILLED"
        assert run.data.tags["phaselab.stopped_by"] == "asha"
    for run_id, status in [
        (finished, "FINISHED"),
        (failed, "FAILED"),
        (elsewhere, "RUNNING"),
        (parent, "RUNNING"),
    ]:
        run = tracker.client.get_run(run_id)
        assert run.info.status == status
        assert "phaselab.stopped_by" not in run.data.tags
    assert close_stopped_runs(tracker, parent) == 0  # nothing left to close


def test_a_search_killed_before_tune_saved_its_state_starts_afresh(tmp_path):
    """Tuner() writes tuner.pkl at once, Tune its experiment state only once fit runs: a driver killed in
    between leaves nothing to resume (restoring it ran one trial without the space, or failed)."""
    search_tuner(_trainable, {"x": tune.uniform(0, 1)}, SETTINGS, storage=str(tmp_path), name="s")
    assert tune.Tuner.can_restore(str(tmp_path / "s"))
    lines = []
    tuner = search_tuner(
        _trainable, {"x": tune.uniform(0, 1)}, SETTINGS, storage=str(tmp_path), name="s", log_fn=lines.append
    )
    tune_config, _, restored = _tuner_parts(tuner)
    assert restored is False and lines == []
    assert tune_config.num_samples == 3
    assert set(tuner._local_tuner.param_space) == {"x"}
