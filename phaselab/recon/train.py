"""One worker's training loop for a reconstruction model (VarNet or PhaseGen's complex U-Net): SSIM loss,
seeded masks, periodic validation, resumable checkpoints.

Ray-free: tests call it in-process, Ray Tune calls it from a function trainable, Ray Train runs it on N
workers. Under an initialized torch.distributed process group the model is wrapped in DDP and every
global batch is split between ranks, so a VarNet's results do not depend on the number of workers (the
complex U-Net's batch norm and dropout see each rank's share of the batch, as on one GPU of the study).
"""

import copy
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import distributed as dist
from torch.nn.parallel import DistributedDataParallel

from phaselab.mri.masks import equispaced_mask, mask_from_name
from phaselab.nn.complex_layers import ComplexDropout, set_dropout_generator
from phaselab.recon.data import KspaceSlices, apply_column_masks, batch_indices, check_slices, volume_max
from phaselab.recon.losses import SSIMLoss
from phaselab.recon.models import ComplexUNetConfig, ModelConfig, VarNetConfig  # noqa: F401  (re-exported)
from phaselab.recon.varnet import VarNet

Report = Callable[[dict[str, float], dict | None], None]
_MASK_STREAM = 7  # keeps the training-mask stream apart from the data-order stream of the same seed
_DROPOUT_STREAM = 11


@dataclass
class TrainConfig:
    lr: float = 3e-4
    batch_size: int = 4  # global: split between DDP ranks
    steps: int = 1000
    eval_every: int = 100  # steps per reporting "epoch"
    acceleration: int = 4
    num_acs: int = 16
    seed: int = 0  # model init, data order, training masks
    bf16: bool = False  # autocast to bfloat16 on CUDA only; ignored on CPU
    device: str = "auto"  # "auto": this rank's CUDA device if available, else CPU
    grad_clip: float | None = None
    val_seed: int = 0  # validation masks: independent of `seed`, so all runs select on the same masks
    val_batch_size: int = 8
    num_threads: int | None = None  # torch CPU threads during training only (restored afterwards)
    # Rotate each training slice by a random global phase. A constant phase offset carries no
    # information in MRI; without this, a net trained on few volumes memorizes their offsets. In neither
    # study, so off unless asked for (the demo asks: few volumes).
    random_global_phase: bool = False
    mask: str = "equispaced"  # equispaced (num_acs lines), random or equispaced_fraction (center_fraction)
    center_fraction: float | None = None
    optimizer: str = "adam"  # adam (the VarNet's) or adamw (PhaseGen's complex U-Net)
    weight_decay: float | None = None  # None: the optimizer's default (Adam 0, AdamW 0.01, as torch)
    lr_gamma: float = 1.0  # lr x gamma per completed pass over the training slices (1: constant)


@dataclass
class TrainResult:
    model: torch.nn.Module  # final weights
    history: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)  # best val SSIM (final if no val)
    best_val_ssim: float | None = None


def resolve_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if not torch.cuda.is_available():
        return torch.device("cpu")
    # Ray Train and torchrun set LOCAL_RANK; otherwise use whatever device the caller selected
    local = os.environ.get("LOCAL_RANK")
    index = int(local) % torch.cuda.device_count() if local is not None else torch.cuda.current_device()
    return torch.device("cuda", index)


def _mask(width: int, cfg: TrainConfig, seed: tuple[int, ...], offset: int | None = None) -> torch.Tensor:
    if cfg.mask == "equispaced":
        return equispaced_mask(width, cfg.acceleration, cfg.num_acs, offset=offset).columns
    return mask_from_name(
        cfg.mask, width, cfg.acceleration, center_fraction=cfg.center_fraction, seed=seed
    ).columns


def training_masks(width: int, cfg: TrainConfig, step: int) -> torch.Tensor:
    """(batch_size, W) masks, a pure function of (seed, step): equispaced ones with a random offset per
    sample, or fastMRI random / equispaced-fraction masks seeded per sample."""
    offsets = np.random.default_rng([cfg.seed, step, _MASK_STREAM]).integers(
        0, cfg.acceleration, cfg.batch_size
    )
    return torch.stack(
        [_mask(width, cfg, (cfg.seed, step, i, _MASK_STREAM), int(o)) for i, o in enumerate(offsets)]
    )


def validation_masks(width: int, num_slices: int, cfg: TrainConfig) -> torch.Tensor:
    """(N, W) fixed masks for validation slice j, keyed by (val_seed, j)."""
    rows = []
    for j in range(num_slices):
        offset = int(np.random.default_rng([cfg.val_seed, j]).integers(0, cfg.acceleration))
        rows.append(_mask(width, cfg, (cfg.val_seed, j), offset))
    return torch.stack(rows)


def _cpu_copy(obj: Any) -> Any:
    """Deep copy with tensors moved to CPU, so a reported checkpoint does not change as training goes on."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


@torch.no_grad()
def validation_ssim(
    model: torch.nn.Module,
    val: KspaceSlices,
    masks: torch.Tensor,
    data_range: torch.Tensor,
    device: torch.device,
    batch_size: int,
    use_bf16: bool = False,
) -> tuple[float, int]:
    """Sum of per-slice SSIM over ``val`` and the slice count (sums, so ranks can be all-reduced)."""
    ssim = SSIMLoss().to(device)
    total, count = 0.0, 0
    for start in range(0, val.num_slices, batch_size):
        sl = slice(start, start + batch_size)
        kspace, mask = val.kspace[sl].to(device), masks[sl].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            out = model(apply_column_masks(kspace, mask), mask)
        values = ssim.per_sample(VarNet.image(out), val.target[sl].to(device), data_range[sl].to(device))
        total += float(values.sum())
        count += int(values.numel())
    return total, count


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer not in ("adam", "adamw"):
        raise ValueError(f"optimizer must be adam or adamw, got {cfg.optimizer!r}")
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    decay = {} if cfg.weight_decay is None else {"weight_decay": cfg.weight_decay}
    return cls(params, lr=cfg.lr, **decay)


def learning_rate(cfg: TrainConfig, step: int, num_slices: int) -> float:
    """lr of ``step``: ``lr * lr_gamma ** epochs``, epochs = completed passes over the ``num_slices``
    training slices (a pure function of the step, so a resumed run needs no scheduler state)."""
    return cfg.lr * cfg.lr_gamma ** ((step * cfg.batch_size) // num_slices)


def dropout_generator(seed: int, step: int, rank: int, device: torch.device) -> torch.Generator:
    """The dropout masks of ``step`` on ``rank``: a pure function of (seed, step, rank)."""
    key = int(np.random.default_rng([seed, step, rank, _DROPOUT_STREAM]).integers(2**62))
    return torch.Generator(device=device).manual_seed(key)


def global_phases(seed: int, step: int, batch_size: int) -> torch.Tensor:
    """Random phase offsets for the global batch of ``step``: a pure function of (seed, step)."""
    rng = np.random.default_rng([seed, step, 7])
    return torch.from_numpy(rng.uniform(-math.pi, math.pi, size=batch_size)).float()


class _Worker:
    """This rank's share of a training run: model, optimizer, step counter, running loss, best model."""

    def __init__(
        self, train: KspaceSlices, val: KspaceSlices | None, model_cfg: ModelConfig, cfg: TrainConfig
    ):
        self.train, self.val, self.model_cfg, self.cfg = train, val, model_cfg, cfg
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if self.distributed else (0, 1)
        if cfg.batch_size < self.world:
            raise ValueError(f"batch_size {cfg.batch_size} is smaller than the {self.world} workers")
        self.device = resolve_device(cfg.device)
        self.use_bf16 = cfg.bf16 and self.device.type == "cuda"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)  # identical initial weights on every rank and device
            self.model = model_cfg.build()
        self.model.to(self.device)
        self.has_dropout = any(isinstance(m, ComplexDropout) and m.p > 0 for m in self.model.modules())
        self.optimizer = make_optimizer(self.model.parameters(), cfg)
        self.step, self.best_val, self.history = 0, None, []
        self.best_state: dict = {}
        self.loss_fn = SSIMLoss().to(self.device)
        self.train_range = volume_max(train)
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        self.loss_count = 0
        if val is not None:
            self.val_part = torch.arange(val.num_slices).tensor_split(self.world)[self.rank]
            self.val_masks = validation_masks(val.kspace.shape[-1], val.num_slices, cfg)[self.val_part]
            self.val_range = volume_max(val)[self.val_part]

    def restore(self, checkpoint: dict) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.step, self.best_val = int(checkpoint["step"]), checkpoint.get("best_val_ssim")
        self.best_state = checkpoint.get("best_model") or {}
        self.history = list(checkpoint.get("history", []))

    def train_step(self, net: torch.nn.Module) -> None:
        cfg = self.cfg
        index = batch_indices(self.train.num_slices, cfg.batch_size, self.step, cfg.seed)
        masks = training_masks(self.train.kspace.shape[-1], cfg, self.step)
        rotation = torch.polar(torch.ones(len(index)), global_phases(cfg.seed, self.step, len(index)))
        mine = torch.arange(cfg.batch_size).tensor_split(self.world)[self.rank]  # contiguous shard per rank
        index, masks, rotation = index[mine], masks[mine].to(self.device), rotation[mine].to(self.device)
        batch = self.train.select(index)
        kspace = batch.kspace.to(self.device)
        if cfg.random_global_phase:
            kspace = kspace * rotation[:, None, None]
        net.train()
        if self.has_dropout:  # dropout masks follow (seed, step, rank): a resumed run repeats them
            set_dropout_generator(self.model, dropout_generator(cfg.seed, self.step, self.rank, self.device))
        try:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16):
                out = net(apply_column_masks(kspace, masks), masks)
        finally:
            set_dropout_generator(self.model, None)
        target = batch.target.to(self.device)
        loss = self.loss_fn(VarNet.image(out), target, self.train_range[index].to(self.device))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(cfg, self.step, self.train.num_slices)
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.step += 1
        self.loss_sum += loss.detach().double() * len(index)
        self.loss_count += len(index)

    def _all_sum(self, values: torch.Tensor) -> torch.Tensor:
        values = values.to(device=self.device, dtype=torch.float64)
        if self.distributed:
            dist.all_reduce(values)
        return values

    def epoch_metrics(self) -> dict[str, float]:
        """Mean train loss since the last call, validation SSIM over all ranks; updates the best model."""
        count = torch.tensor(float(self.loss_count), device=self.device)
        loss_total, loss_count = self._all_sum(torch.stack([self.loss_sum, count.double()]))
        metrics = {
            "step": float(self.step),
            "epoch": float(math.ceil(self.step / self.cfg.eval_every)),
            "train_loss": float(loss_total / loss_count),
        }
        self.loss_sum.zero_()
        self.loss_count = 0
        if self.val is not None:
            self.model.eval()
            part = self.val.select(self.val_part)
            total, count = validation_ssim(
                self.model,
                part,
                self.val_masks,
                self.val_range,
                self.device,
                self.cfg.val_batch_size,
                self.use_bf16,
            )
            ssim_total, ssim_count = self._all_sum(torch.tensor([total, count]))
            metrics["val_ssim"] = float(ssim_total / ssim_count)
            if self.best_val is None or metrics["val_ssim"] > self.best_val:
                self.best_val, self.best_state = metrics["val_ssim"], _cpu_copy(self.model.state_dict())
            metrics["best_val_ssim"] = float(self.best_val)
        self.history.append(metrics)
        return metrics

    def checkpoint(self) -> dict[str, Any]:
        return {
            "model": _cpu_copy(self.model.state_dict()),
            "optimizer": _cpu_copy(self.optimizer.state_dict()),
            "step": self.step,
            "best_val_ssim": self.best_val,
            "best_model": self.best_state,
            "history": copy.deepcopy(self.history),
            "model_kind": self.model_cfg.kind,
            "model_config": asdict(self.model_cfg),
            "train_config": asdict(self.cfg),
        }


def train_varnet(
    train: KspaceSlices,
    val: KspaceSlices | None,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    *,
    report: Report | None = None,
    resume: dict | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train the model of ``model_cfg`` (a VarNet or the complex U-Net) with SSIM loss for
    ``train_cfg.steps`` optimizer steps, with ``train_cfg.optimizer`` and its per-epoch lr decay.

    Every ``eval_every`` steps (and at the last step) ``report(metrics, checkpoint)`` is called on every
    rank; rank 0 passes the checkpoint (``model``, ``optimizer``, ``step``, ``best_val_ssim``,
    ``best_model``, ``history``, ``model_kind``, ``model_config``, ``train_config``), the others None.
    Passing that dict back as ``resume`` continues from its step and repeats the uninterrupted run's
    batches, masks, dropout masks and learning rates.
    """
    check_slices(train)
    if val is not None:
        check_slices(val)
    if train_cfg.steps < 0 or train_cfg.eval_every < 1 or train_cfg.batch_size < 1:
        raise ValueError("steps must be >= 0, eval_every and batch_size >= 1")
    threads_before = torch.get_num_threads()
    if train_cfg.num_threads:
        torch.set_num_threads(train_cfg.num_threads)
    try:
        worker = _Worker(train, val, model_cfg, train_cfg)
        say = log if log is not None and worker.rank == 0 else (lambda _: None)
        if resume is not None:
            worker.restore(resume)
            say(f"resuming at step {worker.step}")
        net: torch.nn.Module = worker.model
        if worker.distributed:
            device_ids = [worker.device.index] if worker.device.type == "cuda" else None
            net = DistributedDataParallel(worker.model, device_ids=device_ids)
        while worker.step < train_cfg.steps:
            worker.train_step(net)
            if worker.step % train_cfg.eval_every and worker.step != train_cfg.steps:
                continue
            metrics = worker.epoch_metrics()
            say(" ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
            if report is not None:
                report(metrics, worker.checkpoint() if worker.rank == 0 else None)
    finally:
        torch.set_num_threads(threads_before)
    best_state = worker.best_state or _cpu_copy(worker.model.state_dict())  # no validation: the final model
    return TrainResult(worker.model, worker.history, best_state, worker.best_val)
