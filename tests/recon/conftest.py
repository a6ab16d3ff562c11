"""Synthetic complex test images for the reconstruction tests: ellipses with a smooth phase."""

import math
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch


def ellipse_images(count: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Magnitudes (count, size, size) float32 and phases in (-pi, pi]: a body ellipse with brighter or
    darker inner ellipses, phase = random linear ramp + curvature + per-ellipse offsets."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    magnitudes, phases = [], []
    for _ in range(count):
        magnitude = np.zeros((size, size))
        phase = rng.uniform(-1.5, 1.5) * x + rng.uniform(-1.5, 1.5) * y + rng.uniform(-1, 1) * (x**2 + y**2)
        body = ((x / rng.uniform(0.7, 0.9)) ** 2 + (y / rng.uniform(0.75, 0.95)) ** 2) <= 1
        magnitude[body] = 1.0
        for _ in range(rng.integers(3, 6)):
            cx, cy = rng.uniform(-0.45, 0.45, 2)
            ax, ay = rng.uniform(0.08, 0.3, 2)
            angle = rng.uniform(0, math.pi)
            xr = (x - cx) * math.cos(angle) + (y - cy) * math.sin(angle)
            yr = -(x - cx) * math.sin(angle) + (y - cy) * math.cos(angle)
            inside = (xr / ax) ** 2 + (yr / ay) ** 2 <= 1
            magnitude[inside] += rng.uniform(-0.6, 0.8)
            phase[inside] += rng.uniform(-0.4, 0.4)
        magnitude = np.clip(magnitude, 0, None)
        magnitudes.append(magnitude)
        phases.append(np.angle(np.exp(1j * phase)))
    return torch.tensor(np.stack(magnitudes), dtype=torch.float32), torch.tensor(
        np.stack(phases), dtype=torch.float32
    )


@pytest.fixture(scope="session")
def ellipses():
    return ellipse_images


@pytest.fixture(scope="session")
def overfit_run():
    """A tiny VarNet trained to overfit six 32x32 ellipse images at R=4 (validated on the same images)."""
    from phaselab.recon.data import slices_from_images
    from phaselab.recon.train import TrainConfig, VarNetConfig, train_varnet

    magnitude, phase = ellipse_images(6, 32, seed=0)
    slices = slices_from_images(magnitude, phase)
    model_cfg = VarNetConfig(cascades=2, chans=8, pools=2)
    train_cfg = TrainConfig(
        lr=2e-3,
        batch_size=4,
        steps=200,
        eval_every=50,
        acceleration=4,
        num_acs=4,
        num_threads=1,
        random_global_phase=False,  # overfitting six images: no augmentation
    )
    start = time.perf_counter()
    result = train_varnet(slices, slices, model_cfg, train_cfg)
    return SimpleNamespace(
        result=result,
        slices=slices,
        model_cfg=model_cfg,
        train_cfg=train_cfg,
        seconds=time.perf_counter() - start,
    )
