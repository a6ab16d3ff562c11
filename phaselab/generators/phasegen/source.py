"""The "phasegen" phase source: training step, validation loss and sampling of the complex DDPM."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from phaselab.generators.base import (
    SliceSeed,
    check_magnitude,
    register_phase_source,
    slice_generators,
)
from phaselab.generators.phasegen.diffusion import (
    CosineSchedule,
    eps_mse,
    q_sample,
    sample_ancestral,
    slice_noise,
    unit_phasor_noise,
)
from phaselab.generators.phasegen.unet import PAPER_FEATURES, ComplexUNet
from phaselab.generators.trained import PhaseBatch, TrainedPhaseSource, normalize_magnitude
from phaselab.generators.training import GeneratorTrainConfig
from phaselab.mri.phase import wrap_phase
from phaselab.nn.complex_layers import set_dropout_generator


def _model_input(z_t: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """[z_t, magnitude + 0i] as (B, 2, H, W) complex; ``magnitude`` already normalize_magnitude'd."""
    return torch.cat([z_t, magnitude[:, None].to(torch.complex64)], dim=1)


@register_phase_source("phasegen")
class PhaseGenPhaseSource(TrainedPhaseSource):
    """Complex DDPM over the unit phasor exp(i phase), conditioned on the normalized magnitude.

    Config: ``features``, ``blocks`` (residual blocks per level after the first), ``dropout`` (encoder),
    ``time_dim``, ``timesteps`` (T), ``cosine_s``, ``sample_steps`` (None: all T; else a respaced
    chain), ``ema`` (sample with the EMA copy; train with ``GeneratorTrainConfig.ema_decay``).
    Runs in float32/complex64 on every device: bf16 autocast does not cover complex operations.
    """

    def __init__(
        self,
        *,
        features: tuple[int, ...] | list[int] = PAPER_FEATURES,
        blocks: int = 3,
        dropout: float = 0.2,
        time_dim: int = 256,
        timesteps: int = 1000,
        cosine_s: float = 0.008,
        sample_steps: int | None = None,
        ema: bool = False,
    ):
        self.ema_targets = ("unet",) if ema else ()
        super().__init__(
            features=[int(f) for f in features],
            blocks=int(blocks),
            dropout=float(dropout),
            time_dim=int(time_dim),
            timesteps=int(timesteps),
            cosine_s=float(cosine_s),
            sample_steps=None if sample_steps is None else int(sample_steps),
            ema=bool(ema),
        )
        self.schedule = CosineSchedule(self.config["timesteps"], self.config["cosine_s"])
        self.ema_updates = 0

    def build_networks(self) -> dict[str, nn.Module]:
        c = self.config
        return {"unet": ComplexUNet(2, 1, c["features"], c["blocks"], c["dropout"], c["time_dim"])}

    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        # one network, one optimizer: the public code also optimized a second, unused U-Net
        return {"unet": torch.optim.Adam(self.networks["unet"].parameters(), lr=lr)}

    def _eps_loss(
        self, net: nn.Module, batch: PhaseBatch, t: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        z0 = torch.polar(torch.ones_like(batch.phase), batch.phase)[:, None]
        eps = unit_phasor_noise(z0.shape, generator, z0.device)
        z_t = q_sample(z0, t, eps, self.schedule)
        return eps_mse(net(_model_input(z_t, batch.magnitude), t), eps)

    def training_step(
        self,
        batch: PhaseBatch,
        optimizers: dict[str, torch.optim.Optimizer],
        generator: torch.Generator,
        clip: float | None,
    ) -> dict[str, float]:
        net = self.networks["unet"]
        t = torch.randint(
            0, self.schedule.timesteps, (batch.phase.shape[0],), generator=generator, device=generator.device
        ).to(batch.phase.device)
        set_dropout_generator(net, generator)  # dropout masks follow (seed, step): resumable
        try:
            loss = self._eps_loss(net, batch, t, generator)
            self.clip_and_step(loss, net, optimizers["unet"], clip)
        finally:
            set_dropout_generator(net, None)
        return {"loss": float(loss.detach())}

    def validation_loss(self, batch: PhaseBatch, generator: torch.Generator) -> dict[str, float]:
        """eps MSE at timesteps spread evenly over [0, T) across the batch, noise from the fixed generator."""
        n = batch.phase.shape[0]
        t = ((torch.arange(n, device=batch.phase.device) + 0.5) * self.schedule.timesteps / n).long()
        with torch.no_grad():
            loss = self._eps_loss(self.network("unet"), batch, t, generator)
        return {"val_loss": float(loss)}

    def network(self, name: str) -> nn.Module:
        # an EMA copy that was never updated holds the initial weights: use the live network then
        return super().network(name) if self.ema_updates else self.networks[name]

    def update_ema(self, decay: float) -> None:
        super().update_ema(decay)
        self.ema_updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "ema_updates": torch.tensor(self.ema_updates)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.ema_updates = int(state.get("ema_updates", 0))

    def sample(
        self,
        magnitude: torch.Tensor,
        *,
        seed: SliceSeed,
        true_phase: torch.Tensor | None = None,
        steps: int | None = None,
    ) -> torch.Tensor:
        """Phase (B, H, W) in (-pi, pi] = angle of z_0 from ancestral sampling; ``steps`` overrides
        ``sample_steps``. Slice i's z_T and per-step noise come from its own generator."""
        check_magnitude(magnitude)
        net = self.network("unet")
        was_training = net.training
        net.eval()
        generators = slice_generators(seed, magnitude.shape[0])
        condition = normalize_magnitude(magnitude.float()).to(self.device)
        z = slice_noise(generators, (1, *magnitude.shape[1:]), self.device)

        def eps_model(z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return net(_model_input(z_t, condition), t)

        try:
            z0 = sample_ancestral(
                eps_model,
                z,
                self.schedule,
                generators,
                steps if steps is not None else self.config["sample_steps"],
            )
        finally:
            net.train(was_training)
        return wrap_phase(torch.angle(z0[:, 0])).to(magnitude.device)


def paper_train_config(num_train_slices: int, epochs: int = 200, **overrides: Any) -> GeneratorTrainConfig:
    """The published recipe: Adam lr 1e-4, batch 128, lr x 0.995 per epoch, ``epochs`` epochs of the data
    (not one batch per epoch, as a stray break made the public code do). Early stopping (patience 30
    evaluations) is left to the caller, who sees every validation loss."""
    batch = overrides.pop("batch_size", 128)
    steps = epochs * max(1, num_train_slices // batch)
    base = {
        "steps": steps,
        "batch_size": batch,
        "lr": 1e-4,
        "schedule": "exponential",
        "gamma": 0.995,
        "eval_every": max(1, num_train_slices // batch),
    }
    return GeneratorTrainConfig(**{**base, **overrides})
