"""The shared generator training loop, on a tiny regression 'generator' (phase = f(magnitude))."""

import io
import math

import torch
from torch import nn

from phaselab.generators.base import SliceSeed, register_phase_source
from phaselab.generators.trained import (
    PhaseBatch,
    TrainedPhaseSource,
    encoding_to_phase,
    phase_to_encoding,
)
from phaselab.generators.training import (
    GeneratorTrainConfig,
    PhasePairs,
    ema_decay_at,
    learning_rate,
    train_generator,
)


@register_phase_source("_test_regressor")
class Regressor(TrainedPhaseSource):
    ema_targets = ("net",)

    def build_networks(self):
        return {"net": nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.SiLU(), nn.Conv2d(8, 2, 3, padding=1))}

    def configure_optimizers(self, lr):
        return {"net": torch.optim.Adam(self.networks["net"].parameters(), lr=lr)}

    def _loss(self, batch: PhaseBatch, net) -> torch.Tensor:
        pred = net(batch.magnitude[:, None])
        return (pred - phase_to_encoding(batch.phase)).pow(2).mean()

    def training_step(self, batch, optimizers, generator, clip):
        loss = self._loss(batch, self.networks["net"])
        self.clip_and_step(loss, self.networks["net"], optimizers["net"], clip)
        return {"loss": float(loss.detach())}

    def validation_loss(self, batch, generator):
        return {"val_loss": float(self._loss(batch, self.networks["net"]))}

    def sample(self, magnitude, *, seed: SliceSeed, true_phase=None):
        with torch.no_grad():
            return encoding_to_phase(self.network("net")(magnitude[:, None].to(self.device))).cpu()


def _pairs(n=24, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    magnitude = torch.rand(n, size, size, generator=g)
    phase = 2.0 * magnitude - 1.0  # a learnable relation
    return PhasePairs(magnitude, phase)


def test_loss_falls_and_resume_is_exact(tmp_path):
    train, val = _pairs(), _pairs(8, seed=1)
    cfg = GeneratorTrainConfig(steps=60, batch_size=8, lr=3e-3, eval_every=20, ema_decay=0.9, device="cpu")
    torch.manual_seed(0)
    straight = Regressor()
    reports = []
    result = train_generator(straight, train, val, cfg, report=lambda m, c: reports.append((m, c)))
    assert len(reports) == 3 and reports[-1][1]["step"] == 60
    assert result.history[-1]["val_loss"] < 0.5 * result.history[0]["val_loss"]

    torch.manual_seed(0)
    first = Regressor()
    saved = []
    train_generator(
        first,
        train,
        val,
        GeneratorTrainConfig(**{**cfg.__dict__, "steps": 40}),
        report=lambda m, c: saved.append(c),
    )
    path = tmp_path / "ck.pt"
    torch.save(saved[-1], path)
    resumed_state = torch.load(path, weights_only=True)
    second = Regressor()
    train_generator(second, train, val, cfg, resume=resumed_state)
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(second.state_dict()[key], value, rtol=0, atol=1e-6)


def test_checkpoint_round_trip(tmp_path):
    source = Regressor()
    train_generator(source, _pairs(), None, GeneratorTrainConfig(steps=5, eval_every=5, device="cpu"))
    path = source.save(tmp_path / "gen.pt")
    from phaselab.generators import load_phase_source

    loaded = load_phase_source(path)
    m = torch.rand(2, 16, 16)
    torch.testing.assert_close(loaded.sample(m, seed=0), source.sample(m, seed=0))


def test_learning_rate_schedules():
    warm = GeneratorTrainConfig(steps=100, lr=1.0, warmup_steps=10)
    assert learning_rate(warm, 0, 10) == 0.1 and learning_rate(warm, 50, 10) == 1.0
    decay = GeneratorTrainConfig(steps=100, lr=1.0, schedule="linear_decay", decay_start=0.5)
    assert learning_rate(decay, 49, 10) == 1.0 and math.isclose(learning_rate(decay, 75, 10), 0.5)
    expo = GeneratorTrainConfig(steps=100, lr=1.0, schedule="exponential", gamma=0.5)
    assert learning_rate(expo, 25, 10) == 0.25


def test_phase_encoding_round_trip():
    phase = (torch.rand(3, 8, 8) * 2 - 1) * math.pi
    torch.testing.assert_close(encoding_to_phase(phase_to_encoding(phase)), phase, atol=1e-5, rtol=0)
    assert encoding_to_phase(3.0 * phase_to_encoding(phase)).allclose(phase, atol=1e-5)


def test_without_ema_decay_sampling_uses_the_trained_weights():
    source = Regressor()
    train_generator(source, _pairs(), None, GeneratorTrainConfig(steps=5, eval_every=5, device="cpu"))
    for live, ema in zip(source.networks["net"].parameters(), source.ema["net"].parameters(), strict=True):
        assert torch.equal(live, ema)


def test_ema_warm_up_is_exact_at_step_zero_and_step_n():
    assert ema_decay_at(0.999, 0) == 1 / 10  # the first average is mostly the first trained weights
    assert ema_decay_at(0.999, 90) == 91 / 100
    assert ema_decay_at(0.999, 10_000) == 0.999  # then the configured decay
    assert ema_decay_at(0.0, 5) == 0.0

    # the average after n steps, by hand: avg <- d_k * avg + (1 - d_k) * w_k, d_k = ema_decay_at(decay, k)
    source = Regressor()
    initial = [p.detach().clone() for p in source.ema["net"].parameters()]
    weights, decays = [], []
    cfg = GeneratorTrainConfig(steps=3, batch_size=8, lr=1e-2, eval_every=3, ema_decay=0.99, device="cpu")

    original = source.update_ema

    def spy(decay):
        weights.append([p.detach().clone() for p in source.networks["net"].parameters()])
        decays.append(decay)
        original(decay)

    source.update_ema = spy
    train_generator(source, _pairs(), None, cfg)
    assert decays == [ema_decay_at(0.99, k) for k in range(3)] == [0.1, 2 / 11, 3 / 12]
    expected = initial
    for d, w in zip(decays, weights, strict=True):
        expected = [d * a + (1 - d) * b for a, b in zip(expected, w, strict=True)]
    for got, want in zip(source.ema["net"].parameters(), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


def test_best_state_is_a_snapshot_not_the_live_weights():
    """On the CPU the best state the loop keeps (and the grid samples from) must not follow the weights
    as they keep training: Tensor.cpu() of a CPU tensor is the tensor itself."""

    class Scripted(Regressor):  # validation says the first evaluation is the best one
        losses = iter([1.0, 2.0, 3.0])

        def validation_loss(self, batch, generator):
            return {"val_loss": next(self.losses)}

    saved = []  # what each report wrote, serialized at once as the Ray worker does

    def report(metrics, checkpoint):
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        saved.append(buffer.getvalue())

    source = Scripted()
    cfg = GeneratorTrainConfig(steps=6, batch_size=8, lr=1e-2, eval_every=2, device="cpu")
    result = train_generator(source, _pairs(), _pairs(8, seed=1), cfg, report=report)
    first = torch.load(io.BytesIO(saved[0]), weights_only=True)["state"]
    assert result.best_val_loss == 1.0
    for key, value in first.items():
        assert torch.equal(result.best_state[key], value), key
    live = source.networks["net"].state_dict()["0.weight"]
    assert not torch.equal(result.best_state["net.0.weight"], live)  # it trained on after the best
