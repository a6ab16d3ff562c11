"""Score-based diffusion phase generator of the first study: NCSN++ network, VE-SDE, samplers, source."""

from phaselab.generators.sbdm.ncsnpp import PAPER_NET, TINY_NET, NCSNpp, NCSNppConfig
from phaselab.generators.sbdm.samplers import (
    SAMPLERS,
    CountingDenoiser,
    evaluations_per_slice,
    geometric_sigmas,
    get_sampler,
    initial_noise,
    karras_sigmas,
    sample_euler,
    sample_heun,
    sample_pc,
)
from phaselab.generators.sbdm.sde import VESDE, Preconditioning, denoising_loss, largest_distance
from phaselab.generators.sbdm.source import DEFAULTS, TINY_CONFIG, SBDMPhaseSource

__all__ = [
    "DEFAULTS",
    "PAPER_NET",
    "SAMPLERS",
    "TINY_CONFIG",
    "TINY_NET",
    "VESDE",
    "Preconditioning",
    "CountingDenoiser",
    "NCSNpp",
    "NCSNppConfig",
    "SBDMPhaseSource",
    "denoising_loss",
    "largest_distance",
    "evaluations_per_slice",
    "geometric_sigmas",
    "get_sampler",
    "initial_noise",
    "karras_sigmas",
    "sample_euler",
    "sample_heun",
    "sample_pc",
]
