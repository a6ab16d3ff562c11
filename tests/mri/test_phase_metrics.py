"""Phase-map quality metrics: known values, invariances, the ranking of phase sources, bootstrap, FID."""

import math
from functools import lru_cache

import numpy as np
import pytest
import torch
from scipy import linalg, stats

from phaselab.data.phantoms import make_phantom_volume
from phaselab.generators.baselines import IidGaussianPhase, SmoothPhase
from phaselab.mri.fid_inception import FidInceptionV3
from phaselab.mri.phase_fid import FID_SKIPPED, inception_fid, phase_fid, render_phase_images
from phaselab.mri.phase_metrics import (
    DISTANCE_KEYS,
    HISTOGRAM_BINS,
    PAIRED_KEYS,
    frechet_distance,
    gradient_magnitudes,
    kernel_distance,
    phase_distance_intervals,
    phase_distances,
    phase_features,
)

SIZE = 64


def _wrap(x):
    return np.angle(np.exp(1j * x))


@lru_cache(maxsize=4)
def _phantoms(kind: str, first: int, patients: int = 8, slices: int = 4):
    volumes = [make_phantom_volume(kind, SIZE, slices, 0, p) for p in range(first, first + patients)]
    return np.concatenate([v.magnitude for v in volumes]), np.concatenate([v.phase for v in volumes])


def _sources(kind: str, noise: float = 0.1) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Candidates for the magnitudes of other patients (100-107), as the test of a generator would make."""
    magnitude, phase = _phantoms(kind, 100)
    m = torch.from_numpy(magnitude)
    rng = np.random.default_rng(3)
    return magnitude, {
        "true (another draw)": phase,
        f"true + N(0, {noise}^2)": _wrap(phase + noise * rng.standard_normal(phase.shape)),
        "smooth": SmoothPhase().sample(m, seed=11).numpy(),
        "iid_gaussian": IidGaussianPhase().sample(m, seed=11).numpy(),
    }


# ---- known values -------------------------------------------------------------------------------


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    for m, n, d in [(40, 30, 8), (12, 20, 50)]:  # more samples than features, and fewer
        x = rng.standard_normal((m, d))
        y = 1.3 * rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) / np.sqrt(d) + 0.2
        cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
        mean = np.sum((x.mean(0) - y.mean(0)) ** 2)
        expected = mean + np.trace(cx) + np.trace(cy) - 2 * np.trace(linalg.sqrtm(cx @ cy)).real
        assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-6)
        assert abs(frechet_distance(x, x)) < 1e-10 * np.trace(cx)


def test_kernel_distance_matches_the_unbiased_mmd_formula():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((9, 4)), rng.standard_normal((7, 4)) + 0.5

    def k(a, b):
        return (a @ b / 4 + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(9) for j in range(9) if i != j) / (9 * 8)
    yy = sum(k(y[i], y[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    xy = sum(k(a, b) for a in x for b in y) / (9 * 7)
    assert kernel_distance(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_wasserstein_distances_match_scipy_within_one_bin():
    magnitude, phase = _phantoms("knee", 0)
    other_magnitude, other = _phantoms("knee", 100)
    d = phase_distances(other, phase, other_magnitude, real_magnitude=magnitude)

    def in_object(p, m):  # phase minus each slice's magnitude-weighted circular mean, in the object
        mask = m > 0.1 * m.max(axis=(1, 2), keepdims=True)
        mean = np.angle((np.where(mask, m, 0) * np.exp(1j * p)).sum(axis=(1, 2), keepdims=True))
        return _wrap(p - mean)[mask], mask

    (ra, ma), (rb, mb) = in_object(other, other_magnitude), in_object(phase, magnitude)
    exact_phase = stats.wasserstein_distance(ra, rb)
    assert d["phase_w1"] == pytest.approx(exact_phase, abs=2 * math.pi / HISTOGRAM_BINS)
    ga, ia = gradient_magnitudes(other.astype(np.float64), ma)
    gb, ib = gradient_magnitudes(phase.astype(np.float64), mb)
    exact_gradient = stats.wasserstein_distance(ga[ia], gb[ib])
    assert d["gradient_w1"] == pytest.approx(exact_gradient, abs=math.pi * math.sqrt(2) / HISTOGRAM_BINS)
    assert d["gradient_w1"] > 0 and d["phase_w1"] > 0


def test_identical_sets_give_zero():
    magnitude, phase = _phantoms("knee", 0)
    for paired in (True, False):
        d = phase_distances(phase, phase, magnitude, paired=paired)
        assert sorted(d) == sorted(DISTANCE_KEYS + (PAIRED_KEYS if paired else ()))
        assert abs(d["feature_fd"]) < 1e-9
        assert d["gradient_w1"] == d["phase_w1"] == d["spectrum_log10_l1"] == 0.0
        if paired:
            assert d["phase_error"] == 0.0
        # the unbiased MMD^2 of a set with itself is -2/(m-1) x the mean squared distance of its kernel
        # embeddings from their mean: 0 only in expectation
        f = phase_features(phase, magnitude)
        kernel = (f @ f.T / f.shape[1] + 1) ** 3
        expected = 2 / (len(f) - 1) * (kernel.mean() - np.diag(kernel).mean())
        assert d["feature_kid"] == pytest.approx(expected, rel=1e-9)
        far = phase_distances(
            IidGaussianPhase().sample(torch.from_numpy(magnitude), seed=0), phase, magnitude
        )
        assert abs(d["feature_kid"]) < 0.01 * far["feature_kid"]


def test_distances_ignore_each_slice_global_phase():
    magnitude, phase = _phantoms("brain", 0)
    offsets = np.random.default_rng(0).uniform(-math.pi, math.pi, (len(phase), 1, 1))
    d = phase_distances(_wrap(phase + offsets), phase, magnitude)
    assert d["phase_error"] < 1e-9 and abs(d["feature_fd"]) < 1e-6
    assert d["gradient_w1"] < 1e-9 and d["spectrum_log10_l1"] < 1e-9
    assert d["phase_w1"] < 2 * 2 * math.pi / HISTOGRAM_BINS  # a value may land in the next bin


def test_features_are_deterministic_size_agnostic_and_leave_the_global_rng_alone():
    magnitude, phase = _phantoms("knee", 0)
    state = torch.get_rng_state()
    first = phase_features(phase[:4], magnitude[:4])
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(first, phase_features(torch.from_numpy(phase[:4]), magnitude[:4]))
    assert first.dtype == np.float64 and first.shape[0] == 4 and np.isfinite(first).all()
    wide = phase_features(np.zeros((2, 40, 72)), np.ones((2, 40, 72)))
    assert wide.shape == (2, first.shape[1])


# ---- ranking of phase sources ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["knee", "brain"])
def test_distances_rank_true_phase_noisy_smooth_iid(kind):
    """Every candidate is a phase for the magnitudes of patients 100-107, compared (unpaired) with the
    acquired phase of patients 0-7, so differences in anatomy weigh the same on all of them.

    phase_w1 cannot order the true phase against the true phase + N(0, 0.1^2): the noise widens an
    in-object distribution of std ~0.3-0.8 rad by ~0.01 rad, far less than the difference between
    two sets of 8 patients (knee 0.090 vs 0.095, brain 0.031 vs 0.033 for the first seed; other seeds
    reverse it). With N(0, 0.2^2), gradient_w1 and the spectrum already rank the noisy true phase
    behind `smooth` at 64 px (knee gradient_w1 0.235 vs 0.138), so 0.1 rad is the noise here.
    """
    magnitude, phase = _phantoms(kind, 0)
    other_magnitude, candidates = _sources(kind)
    d = {
        name: phase_distances(p, phase, other_magnitude, real_magnitude=magnitude)
        for name, p in candidates.items()
    }
    names = list(candidates)
    for key in DISTANCE_KEYS:
        values = [d[name][key] for name in names]
        if key == "phase_w1":
            values = values[1:]
            assert d[names[0]][key] < d["smooth"][key]
        assert values == sorted(values) and len(set(values)) == len(values), (key, values)

    # paired, on the reference magnitudes: phase error against the acquired phase of the same slice
    m = torch.from_numpy(magnitude)
    noisy = _wrap(phase + 0.1 * np.random.default_rng(3).standard_normal(phase.shape))
    errors = [
        phase_distances(p, phase, magnitude)["phase_error"]
        for p in (noisy, SmoothPhase().sample(m, seed=11), IidGaussianPhase().sample(m, seed=11))
    ]
    assert errors == sorted(errors) and errors[0] < 0.1


def test_bootstrap_intervals_contain_the_estimate_and_are_seeded():
    magnitude, phase = _phantoms("brain", 0)
    other_magnitude, candidates = _sources("brain")
    kw = dict(real_magnitude=magnitude, n_boot=50)
    # a small distance (another draw: its plain percentile interval of feature_kid misses the
    # estimate, all replicates lying above it) and a large one
    for name in ("true (another draw)", "smooth"):
        point = phase_distances(candidates[name], phase, other_magnitude, real_magnitude=magnitude)
        intervals = phase_distance_intervals(candidates[name], phase, other_magnitude, seed=0, **kw)
        assert sorted(intervals) == sorted(DISTANCE_KEYS)
        for key, (low, high) in intervals.items():
            assert low <= point[key] <= high and low < high, (name, key)
    smooth = candidates["smooth"]
    again = phase_distance_intervals(smooth, phase, other_magnitude, seed=0, **kw)
    assert intervals == again
    assert intervals != phase_distance_intervals(smooth, phase, other_magnitude, seed=1, **kw)

    paired = phase_distance_intervals(
        SmoothPhase().sample(torch.from_numpy(magnitude), seed=1), phase, magnitude, n_boot=50
    )
    assert sorted(paired) == sorted(DISTANCE_KEYS + PAIRED_KEYS)
    with pytest.raises(ValueError, match="paired"):
        phase_distances(phase, phase, magnitude, real_magnitude=magnitude, paired=True)


# ---- FID --------------------------------------------------------------------------------------------


class _StandIn(torch.nn.Module):
    """Inception-shaped: uint8 (N, 3, H, W) -> (N, 16) features, resized to a fixed input size inside."""

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv1 = torch.nn.Conv2d(3, 8, 3, stride=2)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, stride=2)
        for conv in (self.conv1, self.conv2):
            fan_in = conv.weight[0].numel()
            conv.weight.data = torch.randn(conv.weight.shape, generator=generator) * (2 / fan_in) ** 0.5
            conv.bias.data.zero_()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        assert images.dtype == torch.uint8 and images.shape[1] == 3
        x = torch.nn.functional.interpolate((images.float() - 128) / 128, size=(75, 75), mode="bilinear")
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return x.mean(dim=(2, 3))


def test_render_phase_images():
    phase = np.array([[[0.0, math.pi / 2], [math.pi, -math.pi / 2]]]).repeat(4, 1).repeat(4, 2)
    images = render_phase_images(phase, np.ones_like(phase))
    assert images.dtype == torch.uint8 and images.shape == (1, 3, 8, 8)
    assert torch.equal(images[0, 0], images[0, 2])
    assert [int(images[0, 1, y, x]) for y, x in ((0, 0), (0, 4), (4, 0), (4, 4))] == [128, 191, 255, 64]
    magnitude = np.zeros_like(phase)
    magnitude[0, :4] = 1  # object = upper half; its circular mean phase pi/4 is removed, the rest is 0
    upper = render_phase_images(phase, magnitude, object_only=True)[0, 0]
    assert upper[4:].eq(128).all() and upper[0, 0] == 96 and upper[0, 4] == 159


def test_phase_fid_with_a_stand_in_network():
    magnitude, phase = _phantoms("knee", 0)
    iid = IidGaussianPhase().sample(torch.from_numpy(magnitude), seed=0)
    network = _StandIn()
    state = torch.get_rng_state()
    same = phase_fid(phase, phase, magnitude, network)
    assert torch.equal(state, torch.get_rng_state())
    far = phase_fid(iid, phase, magnitude, network)
    noisy = _wrap(phase + 0.1 * np.random.default_rng(0).standard_normal(phase.shape))
    near = phase_fid(noisy, phase, magnitude, network)
    assert abs(same) < 1e-4 * far and 0 < near < far
    shifted = _wrap(phase + 0.3)  # a global phase counts only in the study's whole-map rendering
    assert phase_fid(shifted, phase, magnitude, network) > 0.01 * far
    assert abs(phase_fid(shifted, phase, magnitude, network, object_only=True)) < 1e-4 * far


def test_inception_fid_runs_from_a_local_weights_file(tmp_path):
    """The real path (file check, TF resize to 299, the full Inception v3) on random weights."""
    magnitude, phase = _phantoms("brain", 0, patients=1, slices=4)
    torch.manual_seed(0)
    network = FidInceptionV3()
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path / "pt_inception-random.pth"
    torch.save({k: v for k, v in network.state_dict().items() if "num_batches" not in k}, path)
    iid = IidGaussianPhase().sample(torch.from_numpy(magnitude), seed=0)
    same = inception_fid(phase, phase, magnitude, path)
    far = inception_fid(iid, phase, magnitude, path)
    assert abs(same) < 1e-4 * far and far > 0


def test_inception_fid_names_a_missing_or_wrong_weights_file(tmp_path):
    magnitude, phase = _phantoms("knee", 0, patients=1, slices=2)
    missing = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    with pytest.raises(FileNotFoundError, match="pt_inception-2015-12-05-6726825d.pth"):
        inception_fid(phase, phase, magnitude, missing)
    wrong = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3)}, wrong)
    with pytest.raises(ValueError, match=r"other\.pth.*not the FID Inception"):
        inception_fid(phase, phase, magnitude, wrong)
    text = tmp_path / "notes.pth"
    text.write_text("not weights")
    with pytest.raises(ValueError, match=r"notes\.pth"):
        inception_fid(phase, phase, magnitude, text)
    assert "--fid-weights" in FID_SKIPPED and "nothing is downloaded" in FID_SKIPPED
