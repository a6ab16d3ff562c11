"""Tiny real searches through the command line: ``phaselab tune-varnet`` and ``phaselab tune-generator``,
two Optuna trials each on CPU, their MLflow runs, the registered generator, and rerunning them."""

import ast
import contextlib
import io
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from phaselab.cli.main import main
from phaselab.config import load_config
from phaselab.tracking import Tracker

pytestmark = pytest.mark.ray
EXPERIMENT = "phaselab-recon-grid"
VARNET_PARAMS = {"lr": "train", "cascades": "varnet", "chans": "varnet", "batch_size": "train"}


def _run(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(argv)
    return rc, out.getvalue()


def _line(text, pattern):
    (match,) = [m for m in (re.search(pattern, line) for line in text.splitlines()) if m]
    return match


def _runs(output_dir):
    """The tracker, the only parent run and its child runs (run id -> run)."""
    tracker = Tracker(f"sqlite:///{output_dir}/mlflow.db", EXPERIMENT)
    (parent,) = tracker.find_runs({"phaselab.role": "parent"})
    children = {r.info.run_id: r for r in tracker.find_runs({"mlflow.parentRunId": parent.info.run_id})}
    return tracker, parent, children


def _history(tracker, run, metric):
    return [m.value for m in tracker.client.get_metric_history(run.info.run_id, metric)]


def _check_stopped_or_finished(children):
    for run in children.values():
        if run.info.status == "KILLED":  # stopped by ASHA, closed by the search
            assert run.data.tags["phaselab.stopped_by"] == "asha"
        else:
            assert run.info.status == "FINISHED"
            assert "phaselab.stopped_by" not in run.data.tags


@pytest.fixture(scope="module")
def varnet_search(ray_session, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("tune-varnet")
    argv = [
        "tune-varnet",
        "--config",
        "tiny",
        "--set",
        f"output_dir={output_dir}",
        "--set",
        "train.steps=4",
        "--set",
        "train.eval_every=2",
        "--samples",
        "2",
        "--ray-address",
        ray_session,
    ]
    rc, out = _run(argv)
    return argv, output_dir, rc, out


def test_tune_varnet_logs_the_best_of_its_trials(varnet_search):
    _, output_dir, rc, out = varnet_search
    assert rc == 0, out
    best = _line(out, r"^best of (\d+) trials: val SSIM ([\d.]+) with (\{.*\})$")
    assert best.group(1) == "2"
    params = ast.literal_eval(best.group(3))
    assert set(params) == set(VARNET_PARAMS)
    assert 1e-4 <= params["lr"] <= 3e-3
    assert params["cascades"] in (2, 4, 8, 12)
    assert params["chans"] in (8, 12, 16, 18)
    assert params["batch_size"] in (2, 4, 8)
    overrides = _line(out, r"^use them in the grid: phaselab grid (.*)$").group(1)
    assert overrides == " ".join(f"--set {VARNET_PARAMS[k]}.{k}={v}" for k, v in params.items())

    tracker, parent, children = _runs(output_dir)
    assert _line(out, r"^MLflow parent run (\w+)$").group(1) == parent.info.run_id
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["phaselab.kind"] == "varnet-search"
    assert {k: parent.data.params[f"best.{k}"] for k in params} == {k: str(v) for k, v in params.items()}
    assert parent.data.params["search.num_samples"] == "2"
    assert parent.data.metrics["trials"] == 2
    best_ssim = parent.data.metrics["best_val_ssim"]
    assert best.group(2) == f"{best_ssim:.4f}"

    # One child run per trial, evaluated at steps 2 and 4 (ASHA may stop one after its first rung).
    assert len(children) == 2
    _check_stopped_or_finished(children)
    history = {run_id: _history(tracker, run, "val_ssim") for run_id, run in children.items()}
    for run_id, run in children.items():
        assert [m.step for m in tracker.client.get_metric_history(run_id, "val_ssim")] == [2, 4]
        assert run.data.tags["phaselab.source"] == "gt"
    assert best_ssim == pytest.approx(max(max(h) for h in history.values()), abs=1e-6)
    (best_run,) = [children[i] for i, h in history.items() if max(h) == pytest.approx(best_ssim, abs=1e-6)]
    assert best_run.info.status == "FINISHED"  # ASHA never stops the best trial
    assert {k: best_run.data.params[f"{VARNET_PARAMS[k]}.{k}"] for k in params} == {
        k: str(v) for k, v in params.items()
    }


def test_tune_varnet_rerun_restores_the_finished_search(varnet_search):
    argv, output_dir, rc, first_out = varnet_search
    assert rc == 0
    tracker, parent, children = _runs(output_dir)
    rc, out = _run(argv)
    assert rc == 0, out
    assert "resuming varnet-search tiny" in out
    assert "resuming the search in" in out
    assert "[1/2]" not in out  # no trial ran
    assert _line(out, r"^best of .*$").group(0) == _line(first_out, r"^best of .*$").group(0)

    _, parent_after, children_after = _runs(output_dir)  # still one parent
    assert parent_after.info.run_id == parent.info.run_id
    assert parent_after.info.status == "FINISHED"
    assert parent_after.data.metrics["best_val_ssim"] == parent.data.metrics["best_val_ssim"]
    assert {i: r.info.status for i, r in children_after.items()} == {
        i: r.info.status for i, r in children.items()
    }


@pytest.fixture(scope="module")
def gan_search(ray_session, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("tune-gan")
    argv = [
        "tune-generator",
        "--config",
        "tiny",
        "--generator",
        "gan",
        "--set",
        f"output_dir={output_dir}",
        "--samples",
        "2",
        "--ray-address",
        ray_session,
    ]
    rc, out = _run(argv)
    return argv, output_dir, rc, out


def test_tune_generator_registers_the_best_model(gan_search):
    _, output_dir, rc, out = gan_search
    assert rc == 0, out
    best = _line(out, r"^best realism score ([\d.e+-]+) \(< 1: closer to the acquired phase than smooth\)$")
    params = ast.literal_eval(_line(out, r"^  with (\{.*\})$").group(1))
    assert set(params) == {"train.lr", "model.l1_weight", "model.ngf"}
    assert 5e-5 <= params["train.lr"] <= 5e-4
    assert params["model.l1_weight"] in (50.0, 100.0, 200.0)
    assert params["model.ngf"] in (16, 32, 64)
    registered = _line(out, r"^registered as phaselab-gan v(\d+) \((.*)\)$")
    assert registered.group(1) == "1"
    checkpoint = Path(registered.group(2))
    assert checkpoint.is_file() and checkpoint.is_relative_to(output_dir)
    assert "use it in the grid: --set generators.gan.registered=phaselab-gan/1" in out

    tracker, parent, children = _runs(output_dir)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["phaselab.kind"] == "tune-gan"
    assert {k: parent.data.params[f"best.{k}"] for k in params} == {k: str(v) for k, v in params.items()}
    assert parent.data.metrics["trials"] == 2
    best_score = parent.data.metrics["best_realism_score"]
    assert best.group(1) == f"{best_score:.4g}"

    assert len(children) == 2
    _check_stopped_or_finished(children)
    # trials are ranked by their samples (realism_score at every evaluation), their losses only logged
    history = {run_id: _history(tracker, run, "realism_score") for run_id, run in children.items()}
    for run_id, run in children.items():
        assert run.data.tags["phaselab.role"] == "generator-trial"
        for metric in ("realism_score", "val_loss", "realism_feature_fd", "realism_smooth_feature_fd"):
            assert [m.step for m in tracker.client.get_metric_history(run_id, metric)] == [2, 4]
    assert best_score == pytest.approx(min(min(h) for h in history.values()), abs=1e-6)
    (best_run,) = [children[i] for i, h in history.items() if min(h) == pytest.approx(best_score, abs=1e-6)]
    # The best trial ran to its end: FINISHED, not stopped by ASHA at its last evaluation.
    assert best_run.info.status == "FINISHED"
    assert best_run.data.tags["phaselab.checkpoint"] == str(checkpoint)
    assert best_run.data.params == {k: str(v) for k, v in params.items()}

    (version,) = tracker.client.search_model_versions("name='phaselab-gan'")
    assert str(version.version) == "1"
    assert version.run_id == parent.info.run_id
    assert version.tags["phaselab.search"] == parent.data.tags["phaselab.sweep_key"]
    assert version.source.endswith("/generator")
    artifacts = {a.path for a in tracker.client.list_artifacts(parent.info.run_id, "generator")}
    assert {"generator/MLmodel", "generator/artifacts"} <= artifacts  # an MLflow model around gan.pt
    stored = [a.path for a in tracker.client.list_artifacts(parent.info.run_id, "generator/artifacts")]
    assert stored == ["generator/artifacts/gan.pt"]
    champion = tracker.client.get_model_version_by_alias("phaselab-gan", "champion")
    assert str(champion.version) == "1"  # the search marks its best version for the grid


def test_tune_generator_rerun_registers_no_new_version(gan_search):
    argv, output_dir, rc, _ = gan_search
    assert rc == 0
    tracker, parent, children = _runs(output_dir)
    rc, out = _run(argv)
    assert rc == 0, out
    assert "resuming the search in" in out
    assert "[1/2]" not in out
    assert _line(out, r"^registered as phaselab-gan v(\d+) ").group(1) == "1"
    (version,) = tracker.client.search_model_versions("name='phaselab-gan'")
    assert str(version.version) == "1"
    _, parent_after, children_after = _runs(output_dir)
    assert parent_after.info.status == "FINISHED"
    assert set(children_after) == set(children)


class _Built(Exception):
    """Raised by a stand-in for search_tuner: the settings a search built, without running it."""

    def __init__(self, settings):
        self.settings = settings


def _capture_settings(monkeypatch, module, tmp_path):
    ctx = SimpleNamespace(
        tracker=SimpleNamespace(closed_on_error=lambda run_id: contextlib.nullcontext()),
        parent_id="parent",
        sweep_dir=tmp_path,
        storage=tmp_path,
        key="key",
        tracking_uri="sqlite://",
        shards=None,
    )
    monkeypatch.setattr(module, "open_sweep", lambda *args, **kwargs: ctx)

    def built(trainable, space, settings, **kwargs):
        raise _Built(settings)

    monkeypatch.setattr(module, "search_tuner", built)


@pytest.mark.parametrize(("steps", "eval_every"), [(4, 2), (5, 2), (3, 5), (150, 75)])
def test_max_t_lets_a_trial_that_runs_to_the_end_finish(monkeypatch, tmp_path, steps, eval_every):
    """ASHA stops a trial when it reports its max_t-th result: max_t must lie past the last evaluation
    (VarNet trials report once more when done), or trials that run to the end are killed unfinished."""
    from phaselab.orchestration import generator_search, varnet_search
    from phaselab.orchestration.generator_jobs import GeneratorJob

    # the training loops evaluate every eval_every steps and at the last step
    evaluations = len([s for s in range(1, steps + 1) if s % eval_every == 0 or s == steps])
    overrides = [f"train.steps={steps}", f"train.eval_every={eval_every}"]
    overrides += [f"generators.gan.train.steps={steps}", f"generators.gan.train.eval_every={eval_every}"]
    config = load_config("tiny", overrides)

    _capture_settings(monkeypatch, varnet_search, tmp_path)
    monkeypatch.setattr(varnet_search, "synthesize_sources", lambda *args, **kwargs: {})
    monkeypatch.setattr(varnet_search, "trial_spec", lambda *args, **kwargs: SimpleNamespace(train_shards=[]))
    monkeypatch.setattr(varnet_search, "save_spec", lambda spec: tmp_path / "spec.json")
    with pytest.raises(_Built) as varnet:
        varnet_search.run_varnet_search(config, source="gt", acceleration=4, num_acs=4, log_fn=lambda _: None)
    assert varnet.value.settings.max_t == evaluations + 1  # the evaluations and the final report

    _capture_settings(monkeypatch, generator_search, tmp_path)
    job = GeneratorJob("gan", {}, {}, [], [], "")
    monkeypatch.setattr(generator_search, "generator_job", lambda ctx, name: job)
    with pytest.raises(_Built) as gan:
        generator_search.run_generator_search(config, "gan", log_fn=lambda _: None)
    assert gan.value.settings.max_t > evaluations
