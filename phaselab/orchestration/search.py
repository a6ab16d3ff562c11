"""The one Optuna + ASHA search builder: Optuna (TPE) proposes, ASHA stops lagging trials, a rerun resumes.

Used by the VarNet search (``varnet_search``) and the generator searches (``generator_search``). A search
lives in ``<storage>/<name>``; callers name it by the content key of what it searches, so two searches
of different cells on one shared storage never restore each other.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from phaselab.tracking import Tracker


@dataclass(frozen=True)
class SearchSettings:
    metric: str  # reported by every trial at every evaluation
    mode: Literal["min", "max"]
    num_samples: int  # Optuna trials
    max_t: int  # evaluations of a trial that runs to the end
    grace_period: int  # evaluations before ASHA may stop a trial
    reduction_factor: int
    max_concurrent: int
    seed: int = 0


def describe_space(space: dict[str, Any]) -> dict[str, str]:
    """Readable search-space entries for dry runs and MLflow params: ``loguniform(5e-05, 0.001)``."""
    from ray.tune.search.sample import Categorical, Domain

    described = {}
    for key, domain in space.items():
        if isinstance(domain, Categorical):
            described[key] = f"choice({list(domain.categories)})"
        elif isinstance(domain, Domain):
            # Tune's names, with q and randn's mean/sd: a search's content key holds these strings, so two
            # spaces must not read alike (quniform, randn lost q, mean, sd; randint read "randuniform")
            sampler = domain.get_sampler()
            q = getattr(sampler, "q", None)  # tune.quniform & co.: a sampler rounded to multiples of q
            sampler = getattr(sampler, "sampler", sampler)
            kind = type(sampler).__name__.strip("_").lower()  # uniform, loguniform, normal
            if type(domain).__name__ == "Integer":
                kind = {"uniform": "randint", "loguniform": "lograndint"}[kind]
            args = [sampler.mean, sampler.sd] if kind == "normal" else [domain.lower, domain.upper]
            if kind == "normal":
                kind = "randn"
            if q is not None:
                kind, args = f"q{kind}", [*args, q]
            described[key] = f"{kind}({', '.join(str(a) for a in args)})"
        else:
            described[key] = repr(domain)
    return described


def search_tuner(
    trainable: Any,
    space: dict[str, Any],
    settings: SearchSettings,
    *,
    storage: str,
    name: str,
    reuse_actors: bool = False,
    log_fn: Callable[[str], None] | None = None,
) -> Any:
    """A ``tune.Tuner`` for the search; restored from ``<storage>/<name>`` when a driver died mid-search.
    A fresh search prints one line per finished trial. ``log_fn`` must be picklable (Tune ships it)."""
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from phaselab.orchestration.progress import SearchProgress, say

    log_fn = log_fn or say  # builtins.print is not picklable once Ray patched it (was the default)

    experiment = f"{str(storage).rstrip('/')}/{name}"
    # and a saved state: Tuner() writes tuner.pkl at once, Tune its state only once fit runs (restoring
    # a driver killed in between found no space and ran 1 trial, or failed for Optuna, on every rerun)
    if tune.Tuner.can_restore(experiment) and _saved_state(experiment):
        log_fn(f"resuming the search in {experiment}")
        return tune.Tuner.restore(experiment, trainable, resume_errored=True)
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=settings.metric,
            mode=settings.mode,
            num_samples=settings.num_samples,
            search_alg=OptunaSearch(seed=settings.seed),
            scheduler=tune.schedulers.ASHAScheduler(
                time_attr="training_iteration",
                max_t=max(1, settings.max_t),
                grace_period=max(1, min(settings.grace_period, settings.max_t)),
                reduction_factor=settings.reduction_factor,
            ),
            max_concurrent_trials=settings.max_concurrent,
            reuse_actors=reuse_actors,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(storage),
            verbose=0,
            callbacks=[SearchProgress(settings.num_samples, settings.metric, settings.mode, log_fn)],
        ),
    )


def _saved_state(experiment: str) -> bool:
    """Whether Tune saved the experiment's state (``experiment_state-*.json``) in ``experiment``."""
    import pyarrow.fs

    local = "://" not in experiment
    fs, path = pyarrow.fs.FileSystem.from_uri(os.path.abspath(experiment) if local else experiment)
    found = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    return any(info.base_name.startswith("experiment_state-") for info in found)


def best_result(results: Any, settings: SearchSettings) -> tuple[dict[str, Any], float]:
    """The best trial's config and its best value of the metric over all its evaluations."""
    best = results.get_best_result(metric=settings.metric, mode=settings.mode, scope="all")
    history = best.metrics_dataframe[settings.metric]
    return best.config, float(history.max() if settings.mode == "max" else history.min())


def close_stopped_runs(tracker: Tracker, parent_id: str) -> int:
    """ASHA stops trials mid-run, so their MLflow runs stay RUNNING: end them KILLED, tagged why. A trial
    that noticed the stop itself ended its run KILLED already (a race with Tune's stop): tag it too —
    after a search that returned, nothing else stops a trial."""
    stopped = 0
    for run in tracker.find_runs({"mlflow.parentRunId": parent_id}):
        if run.info.status == "KILLED" and "phaselab.stopped_by" not in run.data.tags:
            tracker.set_tags(run.info.run_id, {"phaselab.stopped_by": "asha"})
            stopped += 1
        elif run.info.status == "RUNNING":
            tracker.set_tags(run.info.run_id, {"phaselab.stopped_by": "asha"})
            tracker.end_run(run.info.run_id, "KILLED")
            stopped += 1
    return stopped
