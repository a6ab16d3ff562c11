"""Realism before rank: a generator is checked against acquired phase next to the smooth baseline."""

import pytest
import torch

from phaselab.data.phantoms import make_phantom_volume
from phaselab.generators import create_phase_source
from phaselab.generators.base import PhaseSource, register_phase_source
from phaselab.generators.realism import RealismReport, check_realism
from phaselab.mri.phase_metrics import DISTANCE_KEYS


def knee(patients: range, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    volumes = [make_phantom_volume("knee", size, 4, seed=0, patient_index=p) for p in patients]
    images = torch.cat([torch.from_numpy(v.image) for v in volumes])
    return images.abs().float(), torch.angle(images).float()


@register_phase_source("_test_replay")
class Replay(PhaseSource):
    """Returns prepared phase maps in order, whatever the seed: a stand-in for a perfect generator."""

    def __init__(self, phases: torch.Tensor | None = None):
        super().__init__()
        self.phases, self.used = phases, 0

    def sample(self, magnitude, *, seed, true_phase=None):
        out = self.phases[self.used : self.used + magnitude.shape[0]]
        self.used += magnitude.shape[0]
        return out


@pytest.fixture(scope="module")
def data():
    return knee(range(6))


def test_true_phase_passes_and_noise_fails(data):
    magnitude, phase = data
    truth = check_realism(Replay(phase), magnitude, phase)
    assert truth.realistic and truth.worse == () and truth.score < 0.05
    assert truth.distances["phase_error"] == pytest.approx(0.0, abs=1e-6)
    iid = check_realism(create_phase_source("iid_gaussian"), magnitude, phase)
    assert not iid.realistic and set(iid.worse) == set(DISTANCE_KEYS) and iid.score > 5


def test_the_baseline_against_itself_is_a_tie(data):
    magnitude, phase = data
    report = check_realism(create_phase_source("smooth"), magnitude, phase)
    assert report.distances == report.baseline_distances  # same seeds, same samples
    assert report.realistic and report.score == pytest.approx(1.0)


def test_an_untrained_generator_is_unrealistic_and_says_why(data):
    magnitude, phase = data
    source = create_phase_source(
        "sbdm", image_size=32, nf=8, ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[8], sigma_max=30.0,
        sampler="heun", steps=5,
    )  # fmt: skip
    report = check_realism(source, magnitude, phase, max_slices=8)
    assert report.slices == 8
    assert not report.realistic and len(report.worse) >= 3
    text = report.summary()
    assert text.startswith("sbdm: UNREALISTIC") and "than smooth on" in text
    for key in DISTANCE_KEYS:
        assert f"{key} {report.distances[key]:.4g} vs {report.baseline_distances[key]:.4g}" in text
    metrics = report.as_metrics()
    assert metrics["realism_pass"] == 0.0 and metrics["realism_score"] == pytest.approx(report.score)
    assert RealismReport.from_dict(report.as_dict()) == report
