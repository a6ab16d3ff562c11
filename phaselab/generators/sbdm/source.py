"""The ``sbdm`` phase source: conditional score-based diffusion (VE-SDE, NCSN++) on (cos, sin) of phase."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from phaselab.generators.base import SliceSeed, check_magnitude, register_phase_source, slice_generators
from phaselab.generators.sbdm.ncsnpp import PAPER_NET, NCSNpp, NCSNppConfig
from phaselab.generators.sbdm.samplers import (
    CountingDenoiser,
    Denoiser,
    geometric_sigmas,
    get_sampler,
    initial_noise,
    karras_sigmas,
)
from phaselab.generators.sbdm.sde import VESDE, ScoreFn, dsm_loss
from phaselab.generators.trained import (
    PhaseBatch,
    TrainedPhaseSource,
    encoding_to_phase,
    normalize_magnitude,
    phase_to_encoding,
)

_NET_KEYS = (
    "image_size",
    "nf",
    "ch_mult",
    "num_res_blocks",
    "attn_resolutions",
    "dropout",
    "fourier_scale",
    "progressive_input",
)
_SDE_KEYS = ("sigma_min", "sigma_max", "eps", "num_steps")

# The study's settings; every key can be overridden, and the resolved dict is the source's config.
DEFAULTS: dict[str, Any] = {
    **{k: PAPER_NET.as_dict()[k] for k in _NET_KEYS},
    "sigma_min": 0.01,
    "sigma_max": 378.0,
    "eps": 1e-5,
    "num_steps": 1000,
    # "pc" with steps=None is the study's sampler (num_steps levels, 2 evaluations each); "heun"/"euler"
    # use a Karras schedule with `steps` levels (None: 40), to be validated against pc before use
    "sampler": "pc",
    "steps": None,
    "snr": 0.075,
    "corrector_steps": 1,
    "rho": 7.0,
    "sample_batch": 32,  # slices per sampler call
    "bf16": True,  # bf16 autocast of the network while sampling on CUDA
    "val_times": [0.1, 0.3, 0.5, 0.7, 0.9],  # fixed t values of the validation DSM loss
    "init_seed": 0,  # network initialization (and Fourier features) are a function of this seed
}

# A tiny network for tests and CPU demos on 16x16 images (sigma_max ~ largest distance between examples).
TINY_CONFIG: dict[str, Any] = {
    "image_size": 16,
    "nf": 16,
    "ch_mult": [1, 2],
    "num_res_blocks": 1,
    "attn_resolutions": [8],
    "sigma_max": 25.0,
}

DEFAULT_DETERMINISTIC_STEPS = 40


@register_phase_source("sbdm")
class SBDMPhaseSource(TrainedPhaseSource):
    """p(phase | magnitude) by score-based diffusion; keys in :data:`DEFAULTS`.

    Trained with denoising score matching on x0 = (cos, sin) of the phase, the normalized magnitude
    concatenated to the noisy encoding; sampled with the EMA network.
    """

    ema_targets = ("net",)

    def __init__(self, **overrides: Any):
        unknown = set(overrides) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown sbdm config key(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        config = {**DEFAULTS, **overrides}
        for key in ("ch_mult", "attn_resolutions", "val_times"):
            config[key] = list(config[key])
        get_sampler(config["sampler"])
        if config["steps"] is not None and int(config["steps"]) < 1:
            raise ValueError(f"steps must be >= 1, got {config['steps']}")
        if int(config["sample_batch"]) < 1:
            raise ValueError(f"sample_batch must be >= 1, got {config['sample_batch']}")
        VESDE(**{k: config[k] for k in _SDE_KEYS})  # validates
        self.last_evaluations = 0  # network evaluations per slice of the last sample() call
        super().__init__(**config)

    @property
    def sde(self) -> VESDE:
        return VESDE(**{k: self.config[k] for k in _SDE_KEYS})

    def net_config(self) -> NCSNppConfig:
        c = self.config
        return NCSNppConfig(**{k: tuple(c[k]) if isinstance(c[k], list) else c[k] for k in _NET_KEYS})

    def build_networks(self) -> dict[str, nn.Module]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.config["init_seed"]))
            return {"net": NCSNpp(self.net_config())}

    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"net": torch.optim.Adam(self.networks["net"].parameters(), lr=lr)}

    # training -----------------------------------------------------------------------------------
    def training_step(
        self,
        batch: PhaseBatch,
        optimizers: dict[str, torch.optim.Optimizer],
        generator: torch.Generator,
        clip: float | None,
    ) -> dict[str, float]:
        x0, cond = self._inputs(batch)
        sigma = self.sde.sigma(self.sde.sample_times(x0.shape[0], generator, x0.device))
        noise = torch.randn(x0.shape, generator=generator, device=x0.device)
        loss = dsm_loss(_score_fn(self.networks["net"]), x0, cond, sigma, noise).mean()
        self.clip_and_step(loss, self.networks["net"], optimizers["net"], clip)
        return {"loss": float(loss.detach())}

    def validation_loss(self, batch: PhaseBatch, generator: torch.Generator) -> dict[str, float]:
        """DSM loss of the EMA network (what sample() uses) at the fixed ``val_times``, and their mean."""
        x0, cond = self._inputs(batch)
        score_fn = _score_fn(self.network("net"))
        losses = {}
        with torch.no_grad():
            for t in self.config["val_times"]:
                sigma = self.sde.sigma(torch.full((x0.shape[0],), float(t), device=x0.device))
                noise = torch.randn(x0.shape, generator=generator, device=x0.device)
                losses[f"val_loss_t{t:g}"] = float(dsm_loss(score_fn, x0, cond, sigma, noise).mean())
        return {"val_loss": sum(losses.values()) / len(losses), **losses}

    def _inputs(self, batch: PhaseBatch) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_size(batch.phase.shape[-2:])
        return phase_to_encoding(batch.phase.float()), batch.magnitude.float()[:, None]

    def _check_size(self, size: torch.Size) -> None:
        n = self.config["image_size"]
        if tuple(size) != (n, n):
            raise ValueError(f"sbdm was built for {n}x{n} images (config image_size), got {tuple(size)}")

    # sampling -----------------------------------------------------------------------------------
    def sampling_sigmas(self) -> torch.Tensor:
        """The configured sampler's noise levels, decreasing from sigma_max and ending at 0."""
        c, sde = self.config, self.sde
        if c["sampler"] == "pc":
            return geometric_sigmas(int(c["steps"] or sde.num_steps), sde.sigma_min, sde.sigma_max)
        steps = int(c["steps"] or DEFAULT_DETERMINISTIC_STEPS)
        return karras_sigmas(steps, sde.sigma_min, sde.sigma_max, float(c["rho"]))

    def denoiser(self) -> Denoiser:
        """D(x, sigma, magnitude) = x + sigma^2 s(x, sigma, magnitude) with the EMA network."""
        net = self.network("net")
        bf16 = bool(self.config["bf16"]) and self.device.type == "cuda"

        def denoise(x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                score = net(torch.cat([x, cond], dim=1), sigma)
            return x + sigma[:, None, None, None] ** 2 * score.float()

        return denoise

    def sample(
        self, magnitude: torch.Tensor, *, seed: SliceSeed, true_phase: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_magnitude(magnitude)
        self._check_size(magnitude.shape[-2:])
        c = self.config
        cond = normalize_magnitude(magnitude.float().cpu())[:, None]
        generators = slice_generators(seed, magnitude.shape[0])
        sampler, sigmas = get_sampler(c["sampler"]), self.sampling_sigmas()
        options = {"snr": c["snr"], "corrector_steps": c["corrector_steps"]} if c["sampler"] == "pc" else {}
        counter = CountingDenoiser(self.denoiser())
        phases = []
        for start in range(0, magnitude.shape[0], int(c["sample_batch"])):
            gens = generators[start : start + int(c["sample_batch"])]
            x = initial_noise((2, *magnitude.shape[-2:]), float(sigmas[0]), gens, self.device)
            chunk = cond[start : start + len(gens)].to(self.device)
            x = sampler(counter, x, sigmas, cond=chunk, generators=gens, **options)
            phases.append(encoding_to_phase(x))
            self.last_evaluations = counter.evaluations
            counter.evaluations = 0
        return torch.cat(phases).to(magnitude.device)


def _score_fn(net: nn.Module) -> ScoreFn:
    return lambda x, sigma, cond: net(torch.cat([x, cond], dim=1), sigma)
