"""The "gan" phase source: pix2pix (U-Net + PatchGAN, GAN + 100 L1) from magnitude to (cos, sin) phase.

Sampling keeps dropout on, as pix2pix does at test time (its only stochasticity), with each slice's masks
drawn from its own seeded generator; ``sample_dropout=False`` gives the deterministic map instead.

``center_phase`` (off in the study): a slice's global phase carries no information and cannot be told
from its magnitude, so an L1 target with an arbitrary offset pulls the (cos, sin) output towards its
average over offsets (short vectors: a patchy, rough angle). With it the target is the phase with the
slice's magnitude-weighted circular mean removed, and each sample gets a seeded uniform global phase.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from phaselab.generators.base import SliceSeed, check_magnitude, register_phase_source, slice_generators
from phaselab.generators.gan.networks import DropoutNoise, PatchDiscriminator, UNetGenerator
from phaselab.generators.trained import (
    TRAINED_SIZE_KEY,
    PhaseBatch,
    TrainedPhaseSource,
    _unwrap,
    encoding_to_phase,
    normalize_magnitude,
    phase_to_encoding,
)
from phaselab.generators.training import GeneratorTrainConfig
from phaselab.mri.metrics import phase_error
from phaselab.mri.phase import wrap_phase


def remove_global_phase(phase: torch.Tensor, magnitude: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """(B, H, W) phase minus each slice's magnitude-weighted circular mean over the object (magnitude above
    ``threshold`` x its maximum, as the realism metrics define it), wrapped."""
    weight = magnitude * (magnitude > threshold * magnitude.flatten(1).amax(1)[:, None, None])
    offset = torch.angle((torch.polar(weight.float(), phase.float())).sum(dim=(-2, -1)))
    return wrap_phase(phase - offset[:, None, None])


def pix2pix_train_config(
    num_train_slices: int, *, batch_size: int = 32, epochs: int = 100, device: str = "auto", seed: int = 0
) -> GeneratorTrainConfig:
    """The published recipe for the shared loop: batch 32, lr 1e-4 for half the epochs then linear decay
    to 0 (50 + 50), no gradient clipping and no EMA (pix2pix has neither), validation once per epoch."""
    epoch_steps = max(1, num_train_slices // batch_size)
    return GeneratorTrainConfig(
        steps=epochs * epoch_steps, batch_size=batch_size, lr=1e-4, schedule="linear_decay",
        decay_start=0.5, grad_clip=None, ema_decay=None, eval_every=epoch_steps, val_batches=8,
        seed=seed, device=device,
    )  # fmt: skip


@register_phase_source("gan")
class GANPhaseSource(TrainedPhaseSource):
    """pix2pix conditional GAN of the phase encoding (cos, sin) given the magnitude.

    No EMA copy: pix2pix has none, and model selection on genVal L1 (the shared loop keeps the best
    state) is what the study used; the generator that trains is the one that samples.
    """

    ema_targets = ()

    def __init__(
        self,
        *,
        size: int = 256,
        ngf: int = 64,
        ndf: int = 64,
        n_layers: int = 3,
        norm: Literal["instance", "batch"] = "instance",
        dropout: float = 0.5,
        dropout_blocks: int = 3,
        l1_weight: float = 100.0,
        gan_loss: Literal["vanilla", "lsgan"] = "vanilla",
        beta1: float = 0.5,
        beta2: float = 0.999,
        sample_dropout: bool = True,
        center_phase: bool = False,
    ):
        if gan_loss not in ("vanilla", "lsgan"):
            raise ValueError(f"gan_loss must be 'vanilla' or 'lsgan', got {gan_loss!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        super().__init__(
            size=size, ngf=ngf, ndf=ndf, n_layers=n_layers, norm=norm, dropout=dropout,
            dropout_blocks=dropout_blocks, l1_weight=l1_weight, gan_loss=gan_loss, beta1=beta1,
            beta2=beta2, sample_dropout=sample_dropout, center_phase=bool(center_phase),
        )  # fmt: skip

    def build_networks(self) -> dict[str, nn.Module]:
        c = self.config
        generator = UNetGenerator(
            1,
            2,
            size=c["size"],
            ngf=c["ngf"],
            norm=c["norm"],
            dropout=c["dropout"],
            dropout_blocks=c["dropout_blocks"],
        )
        discriminator = PatchDiscriminator(3, ndf=c["ndf"], n_layers=c["n_layers"], norm=c["norm"])
        return {"generator": generator, "discriminator": discriminator}

    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        betas = (self.config["beta1"], self.config["beta2"])
        return {
            name: torch.optim.Adam(net.parameters(), lr=lr, betas=betas)
            for name, net in self.networks.items()
        }

    # pieces of the loss ------------------------------------------------------------------------
    @staticmethod
    def condition(magnitude: torch.Tensor) -> torch.Tensor:
        """Max-normalized magnitude (B, H, W) -> network input (B, 1, H, W) in [-1, 1], as pix2pix images."""
        return 2.0 * magnitude[:, None] - 1.0

    def _gan_loss(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.full_like(logits, 1.0 if real else 0.0)
        if self.config["gan_loss"] == "lsgan":
            return F.mse_loss(logits, target)
        return F.binary_cross_entropy_with_logits(logits, target)

    def _noise(self, generator: torch.Generator) -> DropoutNoise:
        return generator if self.config["sample_dropout"] else None

    def target(self, batch: PhaseBatch) -> torch.Tensor:
        """(cos, sin) of the phase to learn: as acquired, or with ``center_phase`` offset-free."""
        phase = batch.phase
        if self.config["center_phase"]:
            phase = remove_global_phase(phase, batch.magnitude)
        return phase_to_encoding(phase)

    # what the shared loop calls ----------------------------------------------------------------
    def training_step(
        self,
        batch: PhaseBatch,
        optimizers: dict[str, torch.optim.Optimizer],
        generator: torch.Generator,
        clip: float | None,
    ) -> dict[str, float]:
        """pix2pix ``optimize_parameters``: G forward, D step on (real, fake.detach()), G step against
        the updated D with D frozen. Dropout is always on in training."""
        net_g, net_d = self.networks["generator"], self.networks["discriminator"]
        cond = self.condition(batch.magnitude)
        real = self.target(batch)
        fake = net_g(cond, noise=generator)

        # real and fake go through D in one forward (one DDP forward per backward); with instance norm
        # this equals pix2pix's two forwards, with batch norm D's statistics pool real and fake
        logits = net_d(torch.cat([torch.cat([cond, fake.detach()], 1), torch.cat([cond, real], 1)], 0))
        fake_logits, real_logits = logits.chunk(2)
        loss_d = 0.5 * (self._gan_loss(fake_logits, False) + self._gan_loss(real_logits, True))
        self.clip_and_step(loss_d, net_d, optimizers["discriminator"], clip)

        # D only passes gradients to G here: bypass its DDP wrapper, which would wait for D's gradients
        plain_d = _unwrap(net_d)
        plain_d.requires_grad_(False)
        try:
            loss_g_gan = self._gan_loss(plain_d(torch.cat([cond, fake], 1)), True)
            loss_g_l1 = F.l1_loss(fake, real)
            loss_g = loss_g_gan + self.config["l1_weight"] * loss_g_l1
            self.clip_and_step(loss_g, net_g, optimizers["generator"], clip)
        finally:
            plain_d.requires_grad_(True)
        return {
            "loss": float(loss_g.detach()), "d": float(loss_d.detach()), "g_gan": float(loss_g_gan.detach()),
            "g_l1": float(loss_g_l1.detach()), "d_real": float(real_logits.detach().mean()),
            "d_fake": float(fake_logits.detach().mean()),
        }  # fmt: skip

    @torch.no_grad()
    def validation_loss(self, batch: PhaseBatch, generator: torch.Generator) -> dict[str, float]:
        """L1 of the encoding (the study's genVal criterion) and the phase error, as sampled."""
        fake = self.network("generator")(self.condition(batch.magnitude), noise=self._noise(generator))
        pred = encoding_to_phase(fake)
        return {
            "val_loss": float(F.l1_loss(fake, self.target(batch))),
            "val_phase_error": phase_error(
                pred.cpu().numpy(), batch.phase.cpu().numpy(), batch.magnitude.cpu().numpy()
            ),
        }

    @torch.no_grad()
    def sample(
        self, magnitude: torch.Tensor, *, seed: SliceSeed, true_phase: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Phase (B, H, W) in (-pi, pi]; slice i's dropout masks come from its own generator only."""
        check_magnitude(magnitude)
        generators = slice_generators(seed, magnitude.shape[0])
        offsets = None
        if self.config["center_phase"]:  # drawn first: then the dropout masks from the same generators
            offsets = torch.cat([(torch.rand(1, generator=g) * 2 - 1) * math.pi for g in generators])
        noise = generators if self.config["sample_dropout"] else None
        net = self.network("generator")
        was_training = net.training
        net.eval()  # batch norm, if used, must not pool statistics over the batch
        try:
            cond = self.condition(normalize_magnitude(magnitude.float().to(self.device)))
            phase = encoding_to_phase(net(cond, noise=noise))
        finally:
            net.train(was_training)
        if offsets is not None:
            phase = wrap_phase(phase + offsets.to(phase.device)[:, None, None])
        return phase.to(magnitude.device)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        unexpected = [
            k
            for k in state
            if k != TRAINED_SIZE_KEY and not k.startswith(tuple(f"{n}." for n in self.networks))
        ]
        if unexpected:
            raise ValueError(f"unexpected keys in a gan state: {unexpected[:5]}")
