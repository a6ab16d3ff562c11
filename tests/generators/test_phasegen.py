"""PhaseGen: the complex DDPM, its U-Net, training, sampling, saving (its layers: tests/nn)."""

import math

import pytest
import torch

from phaselab.generators import create_phase_source, load_phase_source
from phaselab.generators.phasegen import PhaseGenPhaseSource, paper_train_config
from phaselab.generators.phasegen.diffusion import CosineSchedule, eps_mse, q_sample, sampling_timesteps
from phaselab.generators.phasegen.unet import ComplexUNet
from phaselab.generators.training import GeneratorTrainConfig, PhasePairs, train_generator
from phaselab.nn.complex_layers import count_parameters
from tests.complex_helpers import one_torch_thread, random_complex  # noqa: F401  (the fixture)

TINY = {"features": (4, 8), "blocks": 1, "time_dim": 16, "timesteps": 20}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_paper_unet_parameter_count():
    counts = count_parameters(ComplexUNet())
    # 16.51M complex in convolutions (as the public network) + 0.77M in per-block time projections
    assert counts["complex"] == 17_277_265
    assert counts["real"] == 29_920  # batch-norm gammas and PReLU slopes


# ---- diffusion ------------------------------------------------------------------------------------


def test_cosine_schedule_and_forward_process():
    sched = CosineSchedule(1000, 0.008)
    abar = sched.alpha_bars
    assert abar[0] > 0.9999 and abar[-1] < 1e-6 and bool((abar[1:] < abar[:-1]).all())
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert math.isclose(float(abar[499]), f(500) / f(0), rel_tol=1e-9)
    z0, eps = random_complex(3, 1, 4, 4, seed=1), random_complex(3, 1, 4, 4, seed=2)
    t = torch.tensor([0, 500, 999])
    expected = (
        abar[t].sqrt().float()[:, None, None, None] * z0
        + (1 - abar[t]).sqrt().float()[:, None, None, None] * eps
    )
    torch.testing.assert_close(q_sample(z0, t, eps, sched), expected)
    assert math.isclose(float(eps_mse(eps + 0.5, eps)), 0.25, rel_tol=1e-6)  # L2, not L1
    assert sampling_timesteps(5) == [4, 3, 2, 1, 0]
    assert sampling_timesteps(1000, 10)[0] == 999 and sampling_timesteps(1000, 10)[-1] == 0
    assert len(sampling_timesteps(1000, 10)) == 10


def test_defaults_follow_the_paper_not_the_public_code():
    defaults = PhaseGenPhaseSource.__init__.__kwdefaults__
    assert defaults["timesteps"] == 1000 and defaults["dropout"] == 0.2 and defaults["blocks"] == 3
    tiny = PhaseGenPhaseSource(**TINY)
    optimized = {
        id(p) for group in tiny.configure_optimizers(1e-4)["unet"].param_groups for p in group["params"]
    }
    assert optimized == {id(p) for p in tiny.networks["unet"].parameters()}  # one U-Net, all of it
    cfg = paper_train_config(num_train_slices=1280)
    assert (cfg.steps, cfg.batch_size, cfg.lr, cfg.schedule, cfg.gamma) == (
        2000,
        128,
        1e-4,
        "exponential",
        0.995,
    )


# ---- training and sampling ------------------------------------------------------------------------


def _phantom_pairs():
    from phaselab.data.phantoms import make_phantom_volume

    vols = [make_phantom_volume("brain", 32, 6, 0, p) for p in range(4)]
    magnitude = torch.cat([torch.from_numpy(v.magnitude) for v in vols])
    phase = torch.cat([torch.from_numpy(v.phase) for v in vols])
    return PhasePairs(magnitude[:18], phase[:18]), PhasePairs(magnitude[18:], phase[18:])


@pytest.fixture(scope="module")
def trained():
    train, val = _phantom_pairs()
    torch.manual_seed(0)
    source = PhaseGenPhaseSource(**TINY, ema=True)
    cfg = GeneratorTrainConfig(
        steps=40, batch_size=6, lr=3e-3, eval_every=10, schedule="exponential", ema_decay=0.9, device="cpu"
    )
    result = train_generator(source, train, val, cfg)
    return source, result, val


def test_resume_is_exact_with_dropout():
    g = torch.Generator().manual_seed(0)
    pairs = PhasePairs(
        torch.rand(8, 16, 16, generator=g), (torch.rand(8, 16, 16, generator=g) * 2 - 1) * math.pi
    )
    cfg = GeneratorTrainConfig(steps=4, batch_size=4, lr=1e-3, eval_every=2, device="cpu")
    torch.manual_seed(0)
    straight = PhaseGenPhaseSource(**TINY)
    train_generator(straight, pairs, None, cfg)
    torch.manual_seed(0)
    first, saved = PhaseGenPhaseSource(**TINY), []
    train_generator(
        first,
        pairs,
        None,
        GeneratorTrainConfig(**{**cfg.__dict__, "steps": 2}),
        report=lambda m, c: saved.append(c),
    )
    second = PhaseGenPhaseSource(**TINY)
    train_generator(second, pairs, None, cfg, resume=saved[-1])
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(second.state_dict()[key], value, rtol=0, atol=1e-6)


def test_training_reduces_the_eps_loss_on_phantoms(trained):
    source, result, _ = trained
    losses = [h["val_loss"] for h in result.history]
    assert len(losses) == 4
    assert losses[-1] < 0.6 * losses[0], losses
    assert source.ema_updates == 40


def _assert_same_phase(a, b, atol=1e-4):
    # compare on the circle: float noise must not turn pi into -pi into a 2 pi error
    assert float(torch.angle(torch.polar(torch.ones_like(a), a - b)).abs().max()) <= atol


def test_sampling_is_in_range_reproducible_and_batch_independent(trained):
    source, _, val = trained
    magnitude = val.magnitude[:3]
    phase = source.sample(magnitude, seed=7)
    assert phase.shape == magnitude.shape and phase.dtype == torch.float32
    assert bool((phase > -math.pi).all() and (phase <= math.pi).all())
    torch.testing.assert_close(source.sample(magnitude, seed=7), phase, rtol=0, atol=0)
    _assert_same_phase(source.sample(magnitude[:1], seed=7), phase[:1])
    # with per-slice seeds a slice's phase does not depend on where it sits in the batch
    per_slice = source.sample(magnitude, seed=[11, 12, 13])
    _assert_same_phase(source.sample(magnitude[2:], seed=[13]), per_slice[2:])
    assert (source.sample(magnitude, seed=8) - phase).abs().mean() > 0.1
    # the conditioning is normalized the same way as in training: the scanner's scale does not matter
    _assert_same_phase(source.sample(5.0 * magnitude, seed=7), phase)
    strided = source.sample(magnitude, seed=7, steps=5)
    assert strided.shape == phase.shape and not torch.equal(strided, phase)


def test_save_load_round_trip(trained, tmp_path):
    source, _, val = trained
    path = source.save(tmp_path / "phasegen.pt")
    loaded = load_phase_source(path)
    assert isinstance(loaded, PhaseGenPhaseSource) and loaded.config == source.config
    assert loaded.ema_updates == source.ema_updates
    m = val.magnitude[:2]
    torch.testing.assert_close(loaded.sample(m, seed=3), source.sample(m, seed=3), rtol=0, atol=0)
    assert create_phase_source("phasegen", **TINY).config["timesteps"] == 20
