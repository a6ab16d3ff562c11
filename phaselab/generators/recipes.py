"""The published training recipes of the learned generators, as named, versioned configs.

A recipe fixes what the study fixed (optimizer, schedule, batch, length in epochs, EMA, early stopping)
and records every place where phaselab departs from the paper, with the reason. ``generators.<name>.recipe``
in a preset selects one; ``generators.<name>.train`` / ``.model`` override single keys on top of it (the
demo and tiny presets scale the length down that way, through the same code path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from phaselab.generators.training import GeneratorTrainConfig


@dataclass(frozen=True)
class Recipe:
    name: str  # "<generator>-<what>-v<version>"
    generator: str
    train: dict[str, Any]  # GeneratorTrainConfig fields
    model: dict[str, Any] = field(default_factory=dict)  # constructor keywords the recipe fixes
    reference: str = ""
    deviations: dict[str, str] = field(default_factory=dict)  # key -> why phaselab differs from the paper

    def train_config(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        merged = {**self.train, **(overrides or {})}
        GeneratorTrainConfig(**merged)  # unknown keys or bad values fail here, naming the recipe's key
        return merged


_SBDM_TRAIN = {
    "epochs": 60,
    "lr": 1e-4,
    "warmup_steps": 5000,  # linear warm-up to 1e-4 at step 5000
    "schedule": "constant",
    "grad_clip": 1.0,
    "ema_decay": 0.999,  # score_sde's ema_rate, with its warm-up min(0.999, (1 + n) / (10 + n))
    "eval_every_epochs": 1,
}
_SBDM_DEVIATIONS = {
    "preconditioning": "EDM c_skip/c_out/c_in instead of the study's output / sigma: the study's network "
    "is worse than predicting zero at sigma >= 9 after short training and its denoised estimate leaves "
    "the unit circle ('score_sde' restores the published parameterization)",
    "sigma_max": "'auto' measures the largest distance between training encodings (score_sde's "
    "technique 1, from which the published 378 came) instead of a fixed number",
    "selection": "checkpoints are chosen by an EDM-weighted denoising loss at fixed absolute sigmas, "
    "searches by the realism of genVal samples; the study used 'MSE score and visual inspection'",
}

RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            "sbdm-knee-v1",
            "sbdm",
            {**_SBDM_TRAIN, "batch_size": 12},
            {"preconditioning": "edm", "sigma_max": "auto", "sampler": "pc"},
            "first study (SBDM), knee: Adam, warm-up to 1e-4 at step 5000, batch 12, 60 epochs, EMA 0.999",
            _SBDM_DEVIATIONS,
        ),
        Recipe(
            "sbdm-brain-v1",
            "sbdm",
            {**_SBDM_TRAIN, "batch_size": 32},
            {"preconditioning": "edm", "sigma_max": "auto", "sampler": "pc"},
            "first study (SBDM), brain: as knee with batch 32",
            _SBDM_DEVIATIONS,
        ),
        Recipe(
            "gan-pix2pix-v1",
            "gan",
            {
                "epochs": 100,
                "batch_size": 32,
                "lr": 2e-4,
                "schedule": "linear_decay",
                "decay_start": 0.5,  # 50 epochs constant, then 50 of linear decay to 0
                "grad_clip": None,
                "ema_decay": None,
                "eval_every_epochs": 1,
            },
            {"beta1": 0.5, "beta2": 0.999, "l1_weight": 100.0},
            "pix2pix (Isola et al. 2017) as the first study used it: Adam 2e-4, betas (0.5, 0.999), "
            "100 epochs (50 constant + 50 linear decay), GAN + 100 L1, batch 32",
            {
                "norm": "instance norm (pix2pix's option for small batches); "
                "--set generators.gan.model.norm=batch gives pix2pix's default batch norm",
                "lr": "2e-4, pix2pix's own published rate (the first study's text gives 1e-4)",
            },
        ),
        Recipe(
            "phasegen-v1",
            "phasegen",
            {
                "epochs": 200,
                "batch_size": 128,
                "lr": 1e-4,
                "schedule": "exponential",
                "gamma": 0.995,  # per epoch
                "grad_clip": None,
                "eval_every_epochs": 1,
                "patience_epochs": 30,  # early stopping on genVal
            },
            {"timesteps": 1000},
            "PhaseGen (second study) appendix: Adam 1e-4, lr x 0.995 per epoch, batch 128, 200 epochs, early "
            "stopping with patience 30 epochs on the validation loss",
            {
                "target": "the unit phasor exp(i phase) instead of the whitened complex image: phase is "
                "what a generator supplies here, the magnitude is given",
                "loss": "L2 on the noise as the paper states (the public code used L1)",
            },
        ),
    )
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown training recipe {name!r}; known: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]
