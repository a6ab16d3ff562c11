"""The base of learned phase generators (SBDM, GAN, PhaseGen): networks, phase encoding, state, devices.

A trained generator says *what* one training step and one validation loss are; the shared loop in
``generators/training.py`` says *how* to train (data order, schedules, EMA, DDP, checkpoints, resume),
and Ray code launches that loop. Nothing here knows about Ray or MLflow.
"""

from __future__ import annotations

import copy
import math
from abc import abstractmethod
from typing import Any, NamedTuple

import torch
from torch import nn

from phaselab.generators.base import PhaseSource


class PhaseBatch(NamedTuple):
    """Paired training data on the model's device."""

    magnitude: torch.Tensor  # (B, H, W) float32, normalized by normalize_magnitude
    phase: torch.Tensor  # (B, H, W) float32 in (-pi, pi]


def phase_to_encoding(phase: torch.Tensor) -> torch.Tensor:
    """Wrap-free encoding (B, H, W) -> (B, 2, H, W) = (cos, sin); never a min-max scaled angle."""
    return torch.stack([torch.cos(phase), torch.sin(phase)], dim=1)


def encoding_to_phase(encoding: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) (cos, sin), any length -> phase (B, H, W) in (-pi, pi]."""
    phase = torch.atan2(encoding[:, 1].float(), encoding[:, 0].float())
    return torch.where(phase <= -math.pi, torch.full_like(phase, math.pi), phase)


def normalize_magnitude(magnitude: torch.Tensor) -> torch.Tensor:
    """Per-slice scale to max 1 so the conditioning does not depend on the scanner's scaling."""
    scale = magnitude.flatten(1).amax(dim=1).clamp_min(1e-12)
    return magnitude / scale[:, None, None]


TRAINED_SIZE_KEY = "trained_size"  # state_dict() entry: a 0-d tensor, absent until trained


class TrainedPhaseSource(PhaseSource):
    """A phase source with networks that :func:`phaselab.generators.training.train_generator` trains."""

    requires_training = True
    ema_targets: tuple[str, ...] = ()  # networks that keep an exponential moving average for sampling
    trained_size: int | None  # side of the images it was trained on (None until trained)

    def __init__(self, **config: Any):
        super().__init__(**config)
        self.networks: dict[str, nn.Module] = self.build_networks()
        self.ema: dict[str, nn.Module] = {
            name: self._frozen_copy(self.networks[name]) for name in self.ema_targets
        }
        self.device = torch.device("cpu")
        self.trained_size = None

    @staticmethod
    def _frozen_copy(module: nn.Module) -> nn.Module:
        clone = copy.deepcopy(module)
        clone.requires_grad_(False)
        return clone.eval()

    # what a generator defines -----------------------------------------------------------------
    @abstractmethod
    def build_networks(self) -> dict[str, nn.Module]:
        """The generator's networks by name, built from ``self.config``."""

    @abstractmethod
    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        """Optimizers by name; the shared loop sets their learning rate every step."""

    @abstractmethod
    def training_step(
        self,
        batch: PhaseBatch,
        optimizers: dict[str, torch.optim.Optimizer],
        generator: torch.Generator,
        clip: float | None,
    ) -> dict[str, float]:
        """One update: forward, backward (use :meth:`clip_and_step`), and the losses as floats."""

    @abstractmethod
    def validation_loss(self, batch: PhaseBatch, generator: torch.Generator) -> dict[str, float]:
        """Losses on held-out data without updating anything; must include ``"val_loss"``."""

    def prepare_training(self, magnitude: torch.Tensor, phase: torch.Tensor) -> None:
        """Settle config values measured on the training data (e.g. SBDM's sigma_max "auto") before the
        first step; called by the shared loop on every (re)start, so it must be deterministic."""

    # shared machinery --------------------------------------------------------------------------
    def network(self, name: str) -> nn.Module:
        """The network for sampling: its EMA copy when there is one."""
        return self.ema.get(name, self.networks[name])

    @staticmethod
    def clip_and_step(
        loss: torch.Tensor, module: nn.Module, optimizer: torch.optim.Optimizer, clip: float | None
    ) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(module.parameters(), clip)
        optimizer.step()

    @torch.no_grad()
    def update_ema(self, decay: float) -> None:
        for name, average in self.ema.items():
            live = _unwrap(self.networks[name])
            for avg, param in zip(average.parameters(), live.parameters(), strict=True):
                avg.lerp_(param.detach(), 1.0 - decay)
            for avg_buf, buf in zip(average.buffers(), live.buffers(), strict=True):
                avg_buf.copy_(buf)

    def to(self, device: str | torch.device) -> TrainedPhaseSource:
        self.device = torch.device(device)
        for module in [*self.networks.values(), *self.ema.values()]:
            module.to(self.device)
        return self

    def train_mode(self, training: bool) -> None:
        for module in self.networks.values():
            module.train(training)

    def state_dict(self) -> dict[str, Any]:
        """A snapshot on the CPU: copies, never views of the live weights (``Tensor.cpu()`` of a CPU tensor
        is the tensor itself, so the shared loop's "best state" would follow the weights as they train)."""
        state = {}
        for name, module in self.networks.items():
            state.update({f"{name}.{k}": _copy(v) for k, v in _unwrap(module).state_dict().items()})
        for name, module in self.ema.items():
            state.update({f"ema.{name}.{k}": _copy(v) for k, v in module.state_dict().items()})
        if self.trained_size is not None:
            state[TRAINED_SIZE_KEY] = torch.tensor(self.trained_size)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, module in self.networks.items():
            _unwrap(module).load_state_dict(_subdict(state, f"{name}."))
        for name, module in self.ema.items():
            module.load_state_dict(_subdict(state, f"ema.{name}."))
        # checkpoints from before trained_size was recorded load as untrained in size (None)
        size = state.get(TRAINED_SIZE_KEY)
        self.trained_size = None if size is None else int(size)

    def num_parameters(self) -> int:
        return sum(p.numel() for m in self.networks.values() for p in _unwrap(m).parameters())


def _copy(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to("cpu", copy=True)


def _subdict(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module
