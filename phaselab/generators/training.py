"""The one training loop every learned generator shares: data order, schedules, EMA, DDP, checkpoints.

Written for one worker: tests call it in-process, Ray Train runs it on N workers (it shards each
global batch by rank when ``torch.distributed`` is initialized), Tune runs it as a trial.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import nn

from phaselab.data.batching import batch_indices, epochs_to_steps, steps_per_epoch
from phaselab.generators.trained import PhaseBatch, TrainedPhaseSource, normalize_magnitude


class PhasePairs(NamedTuple):
    """Magnitude/phase slices a generator learns p(phase | magnitude) from."""

    magnitude: torch.Tensor  # (N, H, W) float32
    phase: torch.Tensor  # (N, H, W) float32 in (-pi, pi]


@dataclass
class GeneratorTrainConfig:
    """Training of one generator. Lengths can be given in epochs of the training split (``epochs``,
    ``eval_every_epochs``, ``patience_epochs``), which then set ``steps`` and ``eval_every``."""

    steps: int = 1000
    batch_size: int = 8
    lr: float = 1e-4
    warmup_steps: int = 0
    schedule: Literal["constant", "linear_decay", "exponential"] = "constant"
    decay_start: float = 0.5  # linear_decay: fraction of steps at constant lr (pix2pix: 50 + 50 epochs)
    gamma: float = 0.995  # exponential: lr factor per epoch (PhaseGen)
    grad_clip: float | None = 1.0
    ema_decay: float | None = None
    eval_every: int = 100
    val_batches: int = 4
    seed: int = 0
    device: str = "auto"
    epochs: float | None = None  # passes over the training slices; sets steps
    eval_every_epochs: float | None = None  # sets eval_every
    # early stopping: stop when the validation loss has not improved for this many epochs (PhaseGen: 30)
    patience_epochs: float | None = None


def resolve_lengths(cfg: GeneratorTrainConfig, num_items: int) -> GeneratorTrainConfig:
    """``steps`` and ``eval_every`` from the epoch-based fields, for ``num_items`` training slices."""
    updates = {}
    if cfg.epochs is not None:
        updates["steps"] = epochs_to_steps(cfg.epochs, num_items, cfg.batch_size)
    if cfg.eval_every_epochs is not None:
        updates["eval_every"] = epochs_to_steps(cfg.eval_every_epochs, num_items, cfg.batch_size)
    return replace(cfg, **updates) if updates else cfg


def patience_steps(cfg: GeneratorTrainConfig, num_items: int) -> int | None:
    if cfg.patience_epochs is None:
        return None
    return epochs_to_steps(cfg.patience_epochs, num_items, cfg.batch_size)


@dataclass
class GeneratorTrainResult:
    history: list[dict[str, float]]
    best_val_loss: float
    best_state: dict[str, Any]
    seconds: float


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def learning_rate(cfg: GeneratorTrainConfig, step: int, epoch_steps: int) -> float:
    """Warm-up then the configured schedule, as a function of the step alone (resumable)."""
    factor = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    if cfg.schedule == "linear_decay":
        start = int(cfg.decay_start * cfg.steps)
        if step >= start:
            factor *= max(0.0, 1.0 - (step - start) / max(1, cfg.steps - start))
    elif cfg.schedule == "exponential":
        factor *= cfg.gamma ** (step // max(1, epoch_steps))
    return cfg.lr * factor


def ema_decay_at(decay: float, step: int) -> float:
    """The EMA decay used after optimizer step ``step`` (0-based): ``min(decay, (1 + step) / (10 + step))``.

    The warm-up of score_sde (``num_updates`` in its ExponentialMovingAverage) and of Karras et al.'s
    EMA ramp-up: early averages forget the random initial weights quickly. A fixed 0.999 from step 0
    would leave 45% of the initial weights in the average after 800 steps, and the samples of a short
    run would come from a mostly untrained network.
    """
    return min(decay, (1 + step) / (10 + step))


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _mean_across_ranks(values: dict[str, float], device: torch.device) -> dict[str, float]:
    rank, world = _distributed()
    if world == 1:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor)
    return {k: float(v) / world for k, v in zip(keys, tensor.tolist(), strict=True)}


def _batch(pairs: PhasePairs, index: torch.Tensor, device: torch.device) -> PhaseBatch:
    magnitude = normalize_magnitude(pairs.magnitude[index].float())
    return PhaseBatch(magnitude.to(device), pairs.phase[index].float().to(device))


def validate(
    source: TrainedPhaseSource, val: PhasePairs, cfg: GeneratorTrainConfig, device: torch.device
) -> dict[str, float]:
    """Mean validation losses over fixed batches with fixed noise, so evaluations are comparable."""
    source.train_mode(False)
    totals: dict[str, float] = {}
    n = min(cfg.val_batches, math.ceil(val.magnitude.shape[0] / cfg.batch_size))
    with torch.no_grad():
        for b in range(n):
            index = torch.arange(b * cfg.batch_size, min((b + 1) * cfg.batch_size, val.magnitude.shape[0]))
            losses = source.validation_loss(
                _batch(val, index, device), torch.Generator(device).manual_seed(b)
            )
            for k, v in losses.items():
                totals[k] = totals.get(k, 0.0) + v / n
    source.train_mode(True)
    return totals


def train_generator(
    source: TrainedPhaseSource,
    train: PhasePairs,
    val: PhasePairs | None,
    cfg: GeneratorTrainConfig,
    *,
    report: Callable[[dict[str, float], dict[str, Any] | None], None] | None = None,
    resume: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> GeneratorTrainResult:
    """Train ``source`` in place; every ``eval_every`` steps validate and ``report(metrics, checkpoint)``.

    ``checkpoint`` (rank 0 only, None elsewhere) holds everything :func:`train_generator` needs to
    continue via ``resume=``: the same data order and learning rates follow, since both depend only on
    (seed, step).
    """
    cfg = resolve_lengths(cfg, train.magnitude.shape[0])
    patience = patience_steps(cfg, train.magnitude.shape[0])
    rank, world = _distributed()
    device = pick_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    source.prepare_training(train.magnitude, train.phase)
    source.to(device)
    optimizers = source.configure_optimizers(cfg.lr)
    start_step, best_val, best_state, history, best_step = 0, math.inf, None, [], 0
    if resume is not None:
        source.load_state_dict(resume["state"])
        for name, opt in optimizers.items():
            opt.load_state_dict(resume["optimizers"][name])
        start_step, best_val = int(resume["step"]), float(resume["best_val_loss"])
        best_state, history = resume.get("best_state"), list(resume.get("history", []))
        best_step = int(resume.get("best_step", start_step))
    if world > 1:
        source.networks = {
            k: nn.parallel.DistributedDataParallel(
                m, device_ids=[device.index] if device.type == "cuda" else None
            )
            for k, m in source.networks.items()
        }
    # what it learns is tied to the image size: synthesis refuses other sizes
    source.trained_size = int(train.magnitude.shape[-1])
    source.train_mode(True)
    num = train.magnitude.shape[0]
    epoch_steps = steps_per_epoch(num, cfg.batch_size)
    torch_gen = torch.Generator(device)
    running: dict[str, float] = {}
    count = 0
    began = time.perf_counter()
    for step in range(start_step, cfg.steps):
        lr = learning_rate(cfg, step, epoch_steps)
        for opt in optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr
        index = batch_indices(num, cfg.batch_size, step, cfg.seed)
        index = index[rank::world] if world > 1 else index
        torch_gen.manual_seed(int(np.random.SeedSequence([cfg.seed, step, rank]).generate_state(1)[0]))
        losses = source.training_step(_batch(train, index, device), optimizers, torch_gen, cfg.grad_clip)
        # Without an EMA decay the sampling copies track the live weights, so sample() never uses
        # untrained ones (copied every step: cheaper than a check on every call to network()).
        source.update_ema(ema_decay_at(cfg.ema_decay or 0.0, step))
        for k, v in losses.items():
            running[k] = running.get(k, 0.0) + v
        count += 1
        done = step + 1
        if done % cfg.eval_every == 0 or done == cfg.steps:
            metrics = _mean_across_ranks({f"train_{k}": v / count for k, v in running.items()}, device)
            running, count = {}, 0
            if val is not None:
                metrics.update(_mean_across_ranks(validate(source, val, cfg, device), device))
            metrics["lr"] = lr
            metrics["step"] = done
            history.append(metrics)
            val_loss = metrics.get("val_loss", metrics.get("train_loss", math.inf))
            if val_loss < best_val:
                best_val, best_state, best_step = val_loss, source.state_dict(), done
            stop = patience is not None and done - best_step >= patience and done < cfg.steps
            if stop:
                metrics["stopped_early"] = 1.0
            if log:
                elapsed = time.perf_counter() - began
                left = elapsed / max(1, done - start_step) * (cfg.steps - done)
                shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k != "step")
                log(f"step {done}/{cfg.steps} {shown} ({elapsed:.0f}s, ~{left:.0f}s left)")
            checkpoint = None
            if rank == 0:
                checkpoint = {
                    "step": done,
                    "state": source.state_dict(),
                    "best_val_loss": best_val,
                    "best_state": best_state,
                    "best_step": best_step,
                    "history": history,
                    "config": asdict(cfg),
                    "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                }
            if report is not None:
                report(metrics, checkpoint)
            if stop:  # every rank sees the same (all-reduced) validation loss, so all stop together
                if log:
                    log(f"early stop at step {done}: no better validation loss since step {best_step}")
                break
    if world > 1:
        source.networks = {k: m.module for k, m in source.networks.items()}
    return GeneratorTrainResult(
        history, best_val, best_state or source.state_dict(), time.perf_counter() - began
    )
