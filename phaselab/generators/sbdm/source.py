"""The ``sbdm`` phase source: conditional score-based diffusion (VE-SDE, NCSN++) on (cos, sin) of phase."""

from __future__ import annotations

import math
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
from phaselab.generators.sbdm.sde import VESDE, Preconditioning, denoising_loss, largest_distance
from phaselab.generators.trained import (
    PhaseBatch,
    TrainedPhaseSource,
    encoding_to_phase,
    normalize_magnitude,
    phase_to_encoding,
)
from phaselab.mri.geometry import fourier_resize

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

SIGMA_DATA = 1 / math.sqrt(2)

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
    # bf16 autocast of the network while sampling on CUDA: off until validated against fp32 on phase error
    # on a GPU (none was available to measure it); --set generators.sbdm.model.bf16=true to try it
    "bf16": False,
    # EDM preconditioning keeps the denoised estimate on the data's scale at every sigma; "score_sde" is
    # the study's network (output / sigma), whose estimate drifts far off it at large sigma
    "preconditioning": "edm",
    # rms of the data per channel: (cos, sin) has cos^2 + sin^2 = 1, so 1/sqrt(2) for any phase; with it an
    # untrained (zero-output) network has loss 1 at every sigma
    "sigma_data": SIGMA_DATA,
    "clip_denoised": False,  # project the denoised (cos, sin) estimate into the unit disk
    # validation: EDM-weighted denoising loss at these absolute noise levels, so that networks with other
    # sigma ranges or preconditionings compare at the same sigmas (a fixed t would not)
    "val_sigmas": [0.02, 0.1, 0.5, 2.0, 10.0],
    "init_seed": 0,  # network initialization (and Fourier features) are a function of this seed
    # side of the grid the network models the phase on (None: image_size). Phase maps are smooth: e^{i phase}
    # and the magnitude are Fourier-downsampled to it (k-space centre), and samples Fourier-upsampled to
    # image_size; a CPU-sized network learns a 32x32 grid in minutes (the demo's checkpoint uses it)
    "phase_size": None,
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
        for key in ("ch_mult", "attn_resolutions", "val_sigmas"):
            config[key] = list(config[key])
        if config["preconditioning"] not in ("edm", "score_sde"):
            raise ValueError(
                f"preconditioning must be 'edm' or 'score_sde', got {config['preconditioning']!r}"
            )
        get_sampler(config["sampler"])
        if config["steps"] is not None and int(config["steps"]) < 1:
            raise ValueError(f"steps must be >= 1, got {config['steps']}")
        size = config["phase_size"]
        if size is not None and not 0 < int(size) <= int(config["image_size"]):
            raise ValueError(f"phase_size must be in [1, image_size {config['image_size']}], got {size}")
        if int(config["sample_batch"]) < 1:
            raise ValueError(f"sample_batch must be >= 1, got {config['sample_batch']}")
        if config["sigma_max"] != "auto":
            VESDE(**{k: config[k] for k in _SDE_KEYS})  # validates
        self.last_evaluations = 0  # network evaluations per slice of the last sample() call
        super().__init__(**config)

    @property
    def sde(self) -> VESDE:
        if self.config["sigma_max"] == "auto":
            raise ValueError("sbdm sigma_max is 'auto': it is measured on the training data, so train first")
        return VESDE(**{k: self.config[k] for k in _SDE_KEYS})

    @property
    def precond(self) -> Preconditioning:
        return Preconditioning(self.config["preconditioning"], float(self.config["sigma_data"]))

    def net_config(self) -> NCSNppConfig:
        c = self.config
        net = {k: tuple(c[k]) if isinstance(c[k], list) else c[k] for k in _NET_KEYS}
        net["image_size"] = self.grid_size
        return NCSNppConfig(**net, scale_by_sigma=c["preconditioning"] == "score_sde")

    def prepare_training(self, magnitude: torch.Tensor, phase: torch.Tensor) -> None:
        """sigma_max "auto": the largest distance between two training encodings, rounded up (Song &
        Ermon's technique 1: the initial noise must be able to reach every training example)."""
        if self.config["sigma_max"] == "auto":
            distance = largest_distance(self._to_grid(phase_to_encoding(phase.float())))
            self.config["sigma_max"] = float(math.ceil(distance))

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
        loss = denoising_loss(self.networks["net"], self.precond, x0, cond, sigma, noise).mean()
        self.clip_and_step(loss, self.networks["net"], optimizers["net"], clip)
        return {"loss": float(loss.detach())}

    def validation_loss(self, batch: PhaseBatch, generator: torch.Generator) -> dict[str, float]:
        """EDM-weighted denoising loss (sigma_data 1/sqrt 2) at the fixed ``val_sigmas`` and their mean, of
        the EMA network (what sample() uses: ``val_loss``) and of the live one (``val_loss_live``)."""
        x0, cond = self._inputs(batch)
        fixed = Preconditioning("edm", SIGMA_DATA)
        losses: dict[str, float] = {}
        with torch.no_grad():
            for s in self.config["val_sigmas"]:
                sigma = torch.full((x0.shape[0],), float(s), device=x0.device)
                noise = torch.randn(x0.shape, generator=generator, device=x0.device)
                for tag, net in (("", self.network("net")), ("_live", self.networks["net"])):
                    loss = denoising_loss(net, self.precond, x0, cond, sigma, noise, weighting=fixed)
                    losses[f"val_loss{tag}_s{s:g}"] = float(loss.mean())
        sigmas = self.config["val_sigmas"]
        mean = {
            f"val_loss{tag}": sum(losses[f"val_loss{tag}_s{s:g}"] for s in sigmas) / len(sigmas)
            for tag in ("", "_live")
        }
        return {**mean, **losses}

    def _inputs(self, batch: PhaseBatch) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_size(batch.phase.shape[-2:])
        x0 = self._to_grid(phase_to_encoding(batch.phase.float()))
        return x0, self._to_grid(batch.magnitude.float()[:, None])

    @property
    def grid_size(self) -> int:
        """Side of the network's grid: ``phase_size``, or ``image_size`` when that is None."""
        return int(self.config["phase_size"] or self.config["image_size"])

    def _to_grid(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, n, n) at image_size -> the network's grid: (cos, sin) as one complex image, the
        magnitude (C = 1) as a real one, each Fourier-resized (never an angle)."""
        return _fourier_resize_channels(x, self.grid_size)

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
        """D(x, sigma, magnitude) ~ E[x0 | x] with the EMA network (score = (D - x) / sigma^2)."""
        net, precond = self.network("net"), self.precond
        bf16 = bool(self.config["bf16"]) and self.device.type == "cuda"
        clip = bool(self.config["clip_denoised"])

        def denoise(x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                denoised = precond.denoise(net, x, sigma, cond).float()
            if clip:  # a (cos, sin) pair has length 1: shrink longer estimates onto the unit circle
                denoised = denoised / denoised.norm(dim=1, keepdim=True).clamp_min(1.0)
            return denoised

        return denoise

    def sample(
        self, magnitude: torch.Tensor, *, seed: SliceSeed, true_phase: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_magnitude(magnitude)
        self._check_size(magnitude.shape[-2:])
        c = self.config
        cond = self._to_grid(normalize_magnitude(magnitude.float().cpu())[:, None])
        generators = slice_generators(seed, magnitude.shape[0])
        sampler, sigmas = get_sampler(c["sampler"]), self.sampling_sigmas()
        options = {"snr": c["snr"], "corrector_steps": c["corrector_steps"]} if c["sampler"] == "pc" else {}
        counter = CountingDenoiser(self.denoiser())
        phases = []
        for start in range(0, magnitude.shape[0], int(c["sample_batch"])):
            gens = generators[start : start + int(c["sample_batch"])]
            x = initial_noise((2, self.grid_size, self.grid_size), float(sigmas[0]), gens, self.device)
            chunk = cond[start : start + len(gens)].to(self.device)
            x = sampler(counter, x, sigmas, cond=chunk, generators=gens, **options)
            phases.append(encoding_to_phase(_fourier_resize_channels(x, int(c["image_size"]))))
            self.last_evaluations = counter.evaluations
            counter.evaluations = 0
        return torch.cat(phases).to(magnitude.device)


def _fourier_resize_channels(x: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 2, H, W) (cos, sin) resized as the complex image cos + i sin; (B, 1, H, W) as a real image."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if x.shape[1] == 2:
        z = fourier_resize(torch.complex(x[:, 0].float(), x[:, 1].float()), size)
        return torch.stack([z.real, z.imag], dim=1).to(x.dtype)
    return fourier_resize(x.to(torch.complex64), size).real.to(x.dtype)
