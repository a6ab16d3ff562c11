"""The pix2pix "gan" phase source: networks as published, training, seeded sampling, checkpoints."""

import math

import numpy as np
import pytest
import torch

from phaselab.data.errors import DataError
from phaselab.data.phantoms import make_phantom_volume
from phaselab.generators import create_phase_source, load_phase_source
from phaselab.generators.gan import (
    GANPhaseSource,
    PatchDiscriminator,
    UNetGenerator,
    pix2pix_train_config,
    receptive_field,
)
from phaselab.generators.trained import PhaseBatch, normalize_magnitude
from phaselab.generators.training import GeneratorTrainConfig, PhasePairs, train_generator, validate
from phaselab.mri.metrics import phase_error
from phaselab.mri.phase import synthesize_image

TINY = {"size": 32, "ngf": 8, "ndf": 8, "n_layers": 2}


def _count(module):
    return sum(p.numel() for p in module.parameters())


def _phantoms(patients, slices=6, field="phase"):
    volumes = [make_phantom_volume("knee", 32, slices, 0, p) for p in patients]
    magnitude = torch.from_numpy(np.concatenate([v.magnitude for v in volumes]))
    phase = torch.from_numpy(np.concatenate([getattr(v, field) for v in volumes]))
    return PhasePairs(magnitude, phase)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # tiny convolutions gain nothing from intra-op threads, and on a busy 2-core machine the thread
    # hand-offs made a training step ~20x slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained():
    """A tiny GAN trained briefly on phantom knees, with its training history and validation data.

    The target is the phantoms' anatomy-tied phase (tissue offsets + susceptibility): the part of the
    phase a magnitude can predict. Their coil and B0 phase are patient-specific, so on the full phase
    no generator can beat the mean on held-out patients, and the test could not tell learning apart.
    """
    torch.manual_seed(0)
    source = create_phase_source("gan", **TINY)
    cfg = GeneratorTrainConfig(
        steps=120,
        batch_size=8,
        lr=1e-3,
        schedule="linear_decay",
        grad_clip=None,
        eval_every=40,
        val_batches=2,
        device="cpu",
    )
    val = _phantoms([10, 11], field="anatomy_phase")
    initial = validate(source, val, cfg, torch.device("cpu"))
    result = train_generator(source, _phantoms(range(4), field="anatomy_phase"), val, cfg)
    return source, result, initial, val


def test_unet_256_is_pix2pix_unet_256():
    net = UNetGenerator(1, 2, size=256, norm="batch")
    assert net.levels == 8 and len(net.down) == 8 and len(net.up) == 8
    assert _count(net) == 54_409_858
    # the same layers with pix2pix's 3 -> 3 channels: its printed "54.414 M"
    assert _count(UNetGenerator(3, 3, size=256, norm="batch")) == 54_413_955
    assert _count(UNetGenerator(1, 2, size=256, norm="instance")) == 54_405_506
    # dropout after the up blocks of the three ngf*8 levels around the innermost
    assert sorted(net.dropout_levels) == [4, 5, 6]
    assert UNetGenerator(size=64, ngf=4).levels == 6


def test_unet_reaches_1x1_and_outputs_tanh_encoding():
    net = UNetGenerator(1, 2, size=256, ngf=2)
    sizes = []
    hooks = [block.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1])) for block in net.down]
    out = net(torch.randn(1, 1, 256, 256) * 10, noise=torch.Generator().manual_seed(0))
    for h in hooks:
        h.remove()
    assert sizes == [128, 64, 32, 16, 8, 4, 2, 1]
    assert out.shape == (1, 2, 256, 256) and out.abs().max() <= 1.0
    with pytest.raises(ValueError, match="divisible"):
        net(torch.zeros(1, 1, 96, 96))


def test_patchgan_receptive_field_is_70():
    net = PatchDiscriminator(3, ndf=4, n_layers=3, norm="batch").eval()
    assert receptive_field(net) == 70
    assert receptive_field(PatchDiscriminator(3, n_layers=1)) == 16
    assert _count(PatchDiscriminator(3, norm="batch")) == 2_765_633
    # measured: the input pixels one interior output logit depends on span 70 x 70
    x = torch.randn(1, 3, 128, 128, requires_grad=True)
    logits = net(x)
    logits[0, 0, logits.shape[-2] // 2, logits.shape[-1] // 2].backward()
    rows, cols = (x.grad.abs().sum(dim=(0, 1)) > 0).nonzero(as_tuple=True)
    assert int(rows.max() - rows.min() + 1) == 70 and int(cols.max() - cols.min() + 1) == 70


def test_seeded_dropout_is_per_slice():
    net = UNetGenerator(1, 2, size=32, ngf=4).eval()
    x = torch.randn(3, 1, 32, 32)
    per_slice = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    together = net(x, noise=per_slice)
    alone = net(x[1:2], noise=[torch.Generator().manual_seed(2)])
    torch.testing.assert_close(alone, together[1:2], rtol=0, atol=1e-6)
    assert not torch.allclose(net(x), together, atol=1e-3)  # dropout changes the output


def test_training_reduces_l1(trained):
    _, result, initial, val = trained
    last = result.history[-1]
    assert {"val_loss", "val_phase_error", "train_d", "train_g_gan", "train_g_l1"} <= last.keys()
    # an untrained pix2pix G outputs ~0, so L1 ~ mean(|cos| + |sin|) / 2 ~ 0.63; trained ~0.19
    assert initial["val_loss"] > 0.55 and last["val_loss"] < 0.4 * initial["val_loss"]
    assert result.history[0]["train_g_l1"] > 1.5 * last["train_g_l1"]
    # beyond the mean: the phase follows the anatomy better than zero phase does (0.32 vs 0.38 rad)
    zero = phase_error(np.zeros(val.phase.shape), val.phase.numpy(), val.magnitude.numpy())
    assert last["val_phase_error"] < 0.9 * zero
    assert result.best_val_loss == min(h["val_loss"] for h in result.history)
    assert math.isfinite(last["train_d"]) and math.isfinite(last["train_g_gan"])


def test_training_step_updates_both_networks():
    torch.manual_seed(1)
    source = GANPhaseSource(**TINY)
    before = {k: v.clone() for k, v in source.state_dict().items()}
    pairs = _phantoms([0], slices=4)
    batch = PhaseBatch(normalize_magnitude(pairs.magnitude), pairs.phase)
    optimizers = source.configure_optimizers(1e-4)
    losses = source.training_step(batch, optimizers, torch.Generator().manual_seed(0), None)
    after = source.state_dict()
    for prefix in ("generator.", "discriminator."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))
    # the vanilla GAN loss of D at pix2pix init (logits ~ 0): 0.5 (ln 2 + ln 2)
    assert losses["d"] == pytest.approx(math.log(2), abs=0.05)
    assert losses["loss"] == pytest.approx(losses["g_gan"] + 100 * losses["g_l1"], rel=1e-5)
    assert all(p.requires_grad for p in source.networks["discriminator"].parameters())


def test_sample_keeps_magnitude_and_is_seeded_per_slice(trained):
    source = trained[0]
    magnitude = _phantoms([20], slices=4).magnitude * 37.0  # any scale: sampling normalizes per slice
    phase = source.sample(magnitude, seed=5)
    assert phase.shape == magnitude.shape and phase.dtype == torch.float32
    assert phase.min() > -math.pi and phase.max() <= math.pi
    image = synthesize_image(magnitude, phase)
    torch.testing.assert_close(image.abs(), magnitude, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(source.sample(magnitude, seed=5), phase, rtol=0, atol=0)
    torch.testing.assert_close(source.sample(magnitude[:2], seed=5), phase[:2], rtol=0, atol=1e-6)
    # per-slice seeds: a slice's phase follows its own seed wherever it sits in the batch
    swapped = source.sample(magnitude[[2, 0]], seed=[7, 3])
    torch.testing.assert_close(swapped[1], source.sample(magnitude[:1], seed=[3])[0], rtol=0, atol=1e-6)
    other = source.sample(magnitude, seed=6)
    assert (other - phase).abs().max() > 1e-3  # dropout at test time: seeds differ
    assert source.sample(magnitude[:1], seed=0).shape == (1, 32, 32)


def test_sample_without_dropout_is_deterministic(trained):
    source = trained[0]
    plain = GANPhaseSource(**{**source.config, "sample_dropout": False})
    plain.load_state_dict(source.state_dict())
    magnitude = _phantoms([20], slices=2).magnitude
    assert torch.equal(plain.sample(magnitude, seed=1), plain.sample(magnitude, seed=2))


def test_checkpoint_round_trip_and_truncation(trained, tmp_path):
    source = trained[0]
    path = source.save(tmp_path / "gan.pt")
    loaded = load_phase_source(path)
    assert isinstance(loaded, GANPhaseSource) and loaded.config == source.config
    assert source.trained_size == loaded.trained_size == 32  # from the training data (32x32 phantoms)
    magnitude = _phantoms([21], slices=3).magnitude
    assert torch.equal(loaded.sample(magnitude, seed=9), source.sample(magnitude, seed=9))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated.pt"):
        load_phase_source(truncated)


def test_bad_config_and_recommended_schedule():
    with pytest.raises(ValueError, match="gan_loss"):
        GANPhaseSource(gan_loss="wgan")
    with pytest.raises(ValueError, match="power of two"):
        GANPhaseSource(size=48)
    cfg = pix2pix_train_config(24_854)  # knee genTrain: 776 steps per epoch at batch 32
    assert (cfg.steps, cfg.eval_every, cfg.batch_size, cfg.lr) == (77_600, 776, 32, 1e-4)
    assert cfg.schedule == "linear_decay" and cfg.decay_start == 0.5 and cfg.grad_clip is None


def test_center_phase_learns_an_offset_free_target_and_samples_a_seeded_global_phase():
    from phaselab.generators.gan.source import remove_global_phase

    pairs = _phantoms(range(2), slices=2)
    magnitude = normalize_magnitude(pairs.magnitude.float())
    centred = remove_global_phase(pairs.phase.float(), magnitude)
    turned = remove_global_phase(pairs.phase.float() + 1.3, magnitude)  # any offset gives the same target
    assert torch.allclose(
        torch.polar(torch.ones_like(centred), centred),
        torch.polar(torch.ones_like(turned), turned),
        atol=1e-4,
    )
    source = create_phase_source("gan", **TINY, center_phase=True, sample_dropout=False)
    a, b = source.sample(pairs.magnitude, seed=0), source.sample(pairs.magnitude, seed=1)
    assert torch.equal(a, source.sample(pairs.magnitude, seed=0))
    # without dropout the seed only turns each slice's phase by a constant
    step = torch.angle(torch.polar(torch.ones_like(a), b - a).flatten(1).mean(1))
    assert torch.allclose(
        torch.polar(torch.ones_like(a), a + step[:, None, None]),
        torch.polar(torch.ones_like(b), b),
        atol=1e-4,
    )
    assert step.abs().min() > 1e-3
