"""A tiny pix2pix GAN trained a couple of steps on 32x32 phantom knees: a generator with a training size."""

from pathlib import Path

import numpy as np
import torch

from phaselab.data.phantoms import make_phantom_volume
from phaselab.generators import create_phase_source
from phaselab.generators.gan import GANPhaseSource
from phaselab.generators.training import GeneratorTrainConfig, PhasePairs, train_generator

TINY_GAN = {"size": 32, "ngf": 8, "ndf": 8, "n_layers": 2}


def train_tiny_gan(size: int = 32, steps: int = 2) -> GANPhaseSource:
    volumes = [make_phantom_volume("knee", size, 4, 0, p) for p in range(2)]
    pairs = PhasePairs(
        torch.from_numpy(np.concatenate([v.magnitude for v in volumes])),
        torch.from_numpy(np.concatenate([v.phase for v in volumes])),
    )
    torch.manual_seed(0)
    source = create_phase_source("gan", **{**TINY_GAN, "size": size})
    cfg = GeneratorTrainConfig(steps=steps, batch_size=4, lr=1e-3, eval_every=steps, device="cpu")
    train_generator(source, pairs, None, cfg)
    return source


def tiny_gan_checkpoint(path: Path) -> Path:
    return train_tiny_gan().save(path)
