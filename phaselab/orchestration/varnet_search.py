"""VarNet hyperparameter search on recVal for one (phase source, R, nACS): Ray Tune + Optuna + ASHA.

The grid itself never mixes ASHA across cells (it would compare R=6 with R=2 and stop the hard cells);
the search runs on one representative cell, then its best values go into the grid's config.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phaselab.config import SweepConfig
from phaselab.content_key import config_hash
from phaselab.data.prepare import count_slices
from phaselab.orchestration.search import (
    SearchSettings,
    best_result,
    close_stopped_runs,
    describe_space,
    search_tuner,
)
from phaselab.orchestration.source_kspace import synthesize_sources
from phaselab.orchestration.sweep import open_sweep, trial_spec
from phaselab.orchestration.trial import cell_name, load_spec, run_trial, save_spec, training_lengths


@dataclass
class SearchSpace:
    lr: tuple[float, float] = (1e-4, 3e-3)  # log-uniform
    cascades: tuple[int, ...] = (2, 4, 8, 12)
    chans: tuple[int, ...] = (8, 12, 16, 18)
    batch_size: tuple[int, ...] = (2, 4, 8)

    def to_tune(self) -> dict[str, Any]:
        from ray import tune

        return {
            "lr": tune.loguniform(*self.lr),
            "cascades": tune.choice(list(self.cascades)),
            "chans": tune.choice(list(self.chans)),
            "batch_size": tune.choice(list(self.batch_size)),
        }

    def describe(self) -> dict[str, str]:
        return describe_space(self.to_tune())


@dataclass
class SearchResult:
    best_params: dict[str, Any]
    best_val_ssim: float
    parent_run_id: str
    trials: int


def search_trial(config: dict[str, Any]) -> None:
    """Tune trainable: the base spec with this trial's sampled hyperparameters."""
    from ray import tune

    base = load_spec(config["base_spec_path"])
    params = {k: config[k] for k in ("lr", "cascades", "chans", "batch_size")}
    trial_key = config_hash({"base": base.trial_key, "params": params})
    spec = dataclasses.replace(
        base,
        varnet={**base.varnet, "cascades": params["cascades"], "chans": params["chans"]},
        train={**base.train, "lr": params["lr"], "batch_size": params["batch_size"]},
        trial_key=trial_key,
        trial_dir=str(Path(base.trial_dir).parent / trial_key),
        run_name=f"{cell_name(base.cell)}-lr{params['lr']:.1e}-c{params['cascades']}-ch{params['chans']}"
        f"-b{params['batch_size']}",
    )
    record = run_trial(spec, tune_report=tune.report)
    tune.report({"val_ssim": float(record.get("best_val_ssim") or 0.0), "trial_done": 1.0})


def run_varnet_search(
    config: SweepConfig,
    *,
    source: str,
    acceleration: int,
    num_acs: int,
    num_samples: int = 16,
    space: SearchSpace | None = None,
    log_fn: Callable[[str], None] | None = None,
) -> SearchResult:
    """Optuna (TPE) proposes, ASHA stops lagging trials at each evaluation; resumable by rerunning."""
    from ray import tune

    from phaselab.orchestration.progress import say

    # Tune pickles log_fn; builtins.print no longer pickles once a worker's log reached the driver (Ray
    # patches it), which failed the search
    log_fn = log_fn or say
    space = space or SearchSpace()
    cell = {"source": source, "acceleration": acceleration, "num_acs": num_acs, "seed": 0}
    search = {"cell": cell, "num_samples": num_samples, "space": dataclasses.asdict(space)}
    ctx = open_sweep(config, log_fn, kind="varnet-search", key_extra=search)
    with ctx.tracker.closed_on_error(ctx.parent_id):  # an error or Ctrl-C: the parent run FAILED/KILLED
        ctx.shards = synthesize_sources(ctx, [source], log_fn, seeds=[0])
        base = trial_spec(ctx, cell, ctx.sweep_dir / "trials" / "base", with_test=False)
        base_path = save_spec(base)

        res = config.resources
        trainable = tune.with_resources(
            search_trial, {**res.custom, "cpu": res.cpus_per_trial, "gpu": res.gpus_per_trial}
        )
        lengths = training_lengths(dataclasses.asdict(config.train), count_slices(base.train_shards))
        settings = SearchSettings(
            metric="val_ssim",
            mode="max",
            num_samples=num_samples,
            # evaluations (the last step evaluates too: ceil) + the final report; floor stopped the trials
            # of steps not a multiple of eval_every at their last evaluation, before they finished
            max_t=-(-lengths["steps"] // lengths["eval_every"]) + 1,
            grace_period=config.scheduler.grace_period,
            reduction_factor=config.scheduler.reduction_factor,
            max_concurrent=res.max_concurrent_trials or 2,
        )
        tuner = search_tuner(
            trainable,
            {**space.to_tune(), "base_spec_path": str(base_path)},
            settings,
            storage=str(ctx.storage),
            name=f"search-{ctx.key}",
            reuse_actors=True,
            log_fn=log_fn,
        )
        results = tuner.fit()
        best_config, best_ssim = best_result(results, settings)
        best_params = {k: best_config[k] for k in ("lr", "cascades", "chans", "batch_size")}

        tracker = ctx.tracker
        close_stopped_runs(tracker, ctx.parent_id)
        tracker.log_params(ctx.parent_id, {f"best.{k}": v for k, v in best_params.items()})
        tracker.log_summary(ctx.parent_id, {"best_val_ssim": best_ssim, "trials": len(results)})
        tracker.log_text(ctx.parent_id, json.dumps(best_params, indent=1), "best_params.json")
    ctx.tracker.end_run(ctx.parent_id, "FINISHED")
    return SearchResult(best_params, best_ssim, ctx.parent_id, len(results))
