"""Terminal progress of a Tune grid: one line per finished trial with its test SSIM and an ETA."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ray.tune import Callback


def say(message: str) -> None:
    print(message, flush=True)


class GridProgress(Callback):
    """``total``: a number, or the pipelined grid's feed (its ``planned`` count grows exact as sources
    become ready and finished trials are found)."""

    def __init__(self, total: Any, log_fn: Callable[[str], None] | None = None):
        self._total = total
        self.log_fn = log_fn or say
        self.done = 0
        self.failed = 0
        self.start = time.perf_counter()

    @property
    def total(self) -> int:
        return self._total if isinstance(self._total, int) else self._total.planned

    def _name(self, trial) -> str:
        cell = trial.config.get("cell", {})
        source, r, n, seed = (cell.get(k) for k in ("source", "acceleration", "num_acs", "seed"))
        mixing = ""
        if "real_fraction" in cell:
            mixing = f" {'real only' if cell.get('real_only') else 'real'} {cell['real_fraction']:.0%}"
        return f"{source} R={r} nACS={n} seed={seed}{mixing}"

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.done += 1
        result = trial.last_result or {}
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.done * (self.total - self.done - self.failed)
        ssim = result.get("test_ssim")
        score = f"test SSIM {ssim:.4f}" if ssim is not None else "done"
        self.log_fn(
            f"[{self.done + self.failed}/{self.total}] {self._name(trial)}: {score}"
            f"  ({elapsed:.0f}s elapsed, ~{eta:.0f}s left)"
        )

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.failed += 1
        self.log_fn(
            f"[{self.done + self.failed}/{self.total}] {self._name(trial)}: FAILED ({trial.error_file})"
        )


class SearchProgress(Callback):
    """One line per finished search trial: its parameters, its best metric, the best so far."""

    def __init__(self, total: int, metric: str, mode: str, log_fn: Callable[[str], None] | None = None):
        self.total, self.metric, self.mode = total, metric, mode
        self.log_fn = log_fn or say
        self.done = 0
        self.best: float | None = None
        self.trial_best: dict[str, float] = {}
        self.start = time.perf_counter()

    def _better(self, value: float, than: float | None) -> bool:
        return than is None or (value > than if self.mode == "max" else value < than)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        # A trial's best evaluation, not its last (was last_result: a generator's final val_loss)
        value = result.get(self.metric)
        if value is not None and self._better(value, self.trial_best.get(trial.trial_id)):
            self.trial_best[trial.trial_id] = value

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.done += 1
        result = trial.last_result or {}
        value = self.trial_best.get(trial.trial_id, result.get(self.metric))
        if value is not None and self._better(value, self.best):
            self.best = value
        params = {k: v for k, v in trial.config.items() if not k.endswith("_path")}
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
        score = f"{self.metric} {value:.4g}" if value is not None else "no result"
        best = f"{self.best:.4g}" if self.best is not None else "-"
        self.log_fn(
            f"[{self.done}/{self.total}] {shown}: {score} after {result.get('training_iteration', '?')} "
            f"evaluation(s); best so far {best} ({time.perf_counter() - self.start:.0f}s)"
        )


class GridRefresh(Callback):
    """A Tune callback that puts the grid so far on the parent run each time a trial finishes: during a
    multi-day sweep the parent shows its table and figures, not nothing. Plain data: Tune pickles it."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        parent_id: str,
        config: Any,
        dirs: dict[str, Any],
        min_interval: float = 60.0,
    ):
        self.uri, self.experiment, self.parent_id, self.config = uri, experiment, parent_id, config
        self.dirs = dirs  # the pipelined grid adds each source's trials when its k-space is ready
        # At most one refresh per min_interval seconds: drawing the figures takes the driver seconds of
        # CPU, which a small machine's trials need (the sweep's end logs the final grid in any case).
        self.min_interval, self.last = min_interval, float("-inf")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from phaselab.orchestration.report import log_grid_to_parent
        from phaselab.orchestration.trial import read_result
        from phaselab.tracking import Tracker

        if time.monotonic() - self.last < self.min_interval:
            return
        self.last = time.monotonic()

        rows = [r for d in list(self.dirs.values()) if (r := read_result(d)) is not None]
        try:
            log_grid_to_parent(Tracker(self.uri, self.experiment), self.parent_id, rows, self.config)
        except Exception as err:  # a refresh that fails must not stop the sweep; the end logs it again
            print(f"(could not refresh the grid on the parent run: {err})", flush=True)
