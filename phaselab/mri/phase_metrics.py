"""Phase-map quality metrics: how far a set of synthesized phase maps is from acquired phase.

Weight-free distances between two sets of phase maps (SPEC sections 7.3 and 8); FID with Inception
weights is in :mod:`phaselab.mri.phase_fid`. Inputs are phase (S, H, W) in radians (numpy or torch)
and the magnitude (S, H, W) that defines the object: magnitude > ``threshold`` x the slice maximum.
Every distance looks only inside the object and none sees a slice's global phase, which magnitude
images cannot determine: each slice's magnitude-weighted circular mean phase is removed first (the
gradients and the power spectrum are blind to it anyway).

The distances are computed from per-slice summaries (``_summary``), so a bootstrap over
slices (:func:`phase_distance_intervals`) only re-weights them.
"""

from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from phaselab.mri.metrics import _object_mask, _phase_volume, _remove_global_phase, _wrap, phase_error

DISTANCE_KEYS = ("feature_fd", "feature_kid", "gradient_w1", "phase_w1", "spectrum_log10_l1")
PAIRED_KEYS = ("phase_error",)

FEATURE_SEED = 2024
FEATURE_CHANNELS = (32, 64, 128)
KID_SUBSET_SIZE = 1000
KID_SUBSETS = 100
HISTOGRAM_BINS = 4096
_GRADIENT_RANGE = (0.0, np.pi * np.sqrt(2.0))  # each wrapped neighbour difference is at most pi
_PHASE_RANGE = (-np.pi, np.pi)
_BATCH = 64


class PhaseSummary(NamedTuple):
    """Per-slice summaries of one set of phase maps (about 40 KiB a slice), first axis = slice."""

    features: np.ndarray  # (S, D) float64 random-feature vectors, see phase_features
    gradient_histogram: np.ndarray  # (S, HISTOGRAM_BINS) float32 counts of in-object gradient magnitudes
    phase_histogram: np.ndarray  # (S, HISTOGRAM_BINS) float32 counts of in-object phase, global phase removed
    spectrum: np.ndarray  # (S, R) float64 radially averaged power spectrum of mask * e^{i phase}


def _volumes(phase, magnitude, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    phase = _phase_volume(phase, "phase").astype(np.float64)
    mag = np.abs(_phase_volume(magnitude, "magnitude")).astype(np.float64)
    if phase.shape != mag.shape:
        raise ValueError(f"shapes differ: phase {phase.shape}, magnitude {mag.shape}")
    if min(phase.shape[-2:]) < 8:
        raise ValueError(f"slices must be at least 8x8, got {phase.shape[-2:]}")
    return phase, mag, _object_mask(mag, threshold)


# ---- random convolutional features ------------------------------------------------------------


@lru_cache(maxsize=1)
def _feature_weights() -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """He-normal 3x3 kernels and N(0, 0.1^2) biases from a private generator seeded with FEATURE_SEED;
    the first layer's kernels are made zero-mean, so it responds to spatial variation only."""
    generator = torch.Generator().manual_seed(FEATURE_SEED)
    weights, c_in = [], 3
    for c_out in FEATURE_CHANNELS:
        kernel = torch.randn((c_out, c_in, 3, 3), generator=generator, dtype=torch.float64)
        if c_in == 3:
            kernel = kernel - kernel.mean(dim=(2, 3), keepdim=True)
        bias = 0.1 * torch.randn((c_out,), generator=generator, dtype=torch.float64)
        weights.append(((kernel * (2.0 / (9 * c_in)) ** 0.5).float(), bias.float()))
        c_in = c_out
    return tuple(weights)


def _masked_moments(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weighted mean and std over space of ``h`` (B, C, H, W) with weights ``w`` (B, 1, H, W)."""
    h, w = h.double(), w.double()
    total = w.sum(dim=(2, 3)).clamp_min(1e-12)
    mean = (h * w).sum(dim=(2, 3)) / total
    var = ((h - mean[..., None, None]) ** 2 * w).sum(dim=(2, 3)) / total
    return torch.cat([mean, var.clamp_min(0).sqrt()], dim=1)


def phase_features(phase, magnitude, threshold: float = 0.1) -> np.ndarray:
    """Random convolutional features of each slice's in-object phase: (S, 2 * sum(FEATURE_CHANNELS)).

    Definition: input channels (cos r * m, sin r * m, m), with r the phase after removing the slice's
    magnitude-weighted circular mean and m the object mask; three 3x3 convolutions with stride 2
    (FEATURE_CHANNELS outputs, fixed He-normal weights drawn from a private seeded generator, so the
    global random state is untouched; the first layer's kernels have zero mean, so the features see
    spatial structure, edges and texture, rather than the phase level, which ``phase_w1`` measures),
    each followed by a ReLU; after every layer, the mean and the std of each channel over the object
    (the mask average-pooled to that layer's grid, as weights) are appended. Works at any size >= 8x8;
    statistics in float64. Random untrained features as a weight-free stand-in for Inception: Naeem et
    al., "Reliable Fidelity and Diversity Metrics for Generative Models", ICML 2020 (random embeddings).
    """
    phase, mag, mask = _volumes(phase, magnitude, threshold)
    return _features(_remove_global_phase(phase, mag, mask), mask)


def _features(residual: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = []
    for start in range(0, residual.shape[0], _BATCH):
        r = torch.from_numpy(residual[start : start + _BATCH]).float()
        m = torch.from_numpy(mask[start : start + _BATCH]).float()
        x = torch.stack([torch.cos(r) * m, torch.sin(r) * m, m], dim=1)
        w = m[:, None]
        pooled = []
        with torch.no_grad():
            for kernel, bias in _feature_weights():
                x = F.relu(F.conv2d(x, kernel, bias, stride=2, padding=1))
                w = F.avg_pool2d(w, 3, stride=2, padding=1, count_include_pad=False)
                pooled.append(_masked_moments(x, w))
        out.append(torch.cat(pooled, dim=1).numpy())
    return np.concatenate(out).astype(np.float64)


def _covariance_factor(x: np.ndarray) -> np.ndarray:
    """F with F.T @ F = the unbiased covariance of ``x`` (m, D): the centred samples / sqrt(m - 1) when
    m <= D, else the symmetric square root of the covariance (``eigh``, negative rounding clipped)."""
    centred = (x - x.mean(axis=0)) / np.sqrt(len(x) - 1)
    if len(x) <= x.shape[1]:
        return centred
    vals, vecs = np.linalg.eigh(centred.T @ centred)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets ``x`` (m, D) and ``y`` (n, D).

    ||mu_x - mu_y||^2 + Tr(C_x + C_y - 2 (C_x C_y)^{1/2}) with unbiased covariances (Heusel et al.,
    "GANs trained by a two time-scale update rule converge to a local Nash equilibrium", NeurIPS
    2017). With factors C = F^T F (:func:`_covariance_factor`), Tr (C_x C_y)^{1/2} is the sum of the
    singular values of F_x F_y^T, since (F_x F_y^T)(F_x F_y^T)^T = F_x C_y F_x^T has the eigenvalues
    of C_x C_y; no non-symmetric square root is taken, and identical sets give 0 to rounding.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("the Frechet distance needs at least 2 samples in each set")
    fx, fy = _covariance_factor(x), _covariance_factor(y)
    trace_root = np.linalg.svd(fx @ fy.T, compute_uv=False).sum()
    mean_term = np.sum((x.mean(axis=0) - y.mean(axis=0)) ** 2)
    return float(mean_term + np.sum(fx**2) + np.sum(fy**2) - 2 * trace_root)


def _polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    base = a @ b.T / a.shape[1] + 1
    return base * base * base  # the cube; much faster than np.power


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    kxx, kyy, kxy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    m, n = len(x), len(y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2 * kxy.mean())


def kernel_distance(x: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """Kernel (KID) distance: unbiased MMD^2 with the kernel k(a, b) = (a . b / D + 1)^3.

    Bińkowski et al., "Demystifying MMD GANs", ICLR 2018. Both sets whole when neither exceeds
    KID_SUBSET_SIZE; otherwise the mean over KID_SUBSETS random subsets of that size (seeded). Its
    expectation is 0 for equal distributions; a single estimate can be slightly negative (identical
    sets give -2/(m-1) x the mean squared feature-space distance to the set's mean embedding).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("the kernel distance needs at least 2 samples in each set")
    if max(len(x), len(y)) <= KID_SUBSET_SIZE:
        return _mmd2_unbiased(x, y)
    rng = np.random.default_rng(seed)
    size = min(KID_SUBSET_SIZE, len(x), len(y))
    values = [
        _mmd2_unbiased(x[rng.choice(len(x), size, replace=False)], y[rng.choice(len(y), size, replace=False)])
        for _ in range(KID_SUBSETS)
    ]
    return float(np.mean(values))


# ---- distributions and spectra ---------------------------------------------------------------------


def gradient_magnitudes(phase: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wrap-aware gradient magnitude (rad/pixel) as in phase_gradient_stats: forward differences,
    each wrapped to (-pi, pi], over pixels whose right and lower neighbours are also in the object.
    Returns (S, H-1, W-1) magnitudes and the matching bool mask."""
    grad_x = _wrap(np.diff(phase, axis=-1))[..., :-1, :]
    grad_y = _wrap(np.diff(phase, axis=-2))[..., :, :-1]
    inside = mask[..., :-1, :-1] & mask[..., :-1, 1:] & mask[..., 1:, :-1]
    return np.hypot(grad_x, grad_y), inside


def _histograms(values: np.ndarray, inside: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """(S, HISTOGRAM_BINS) counts of each slice's ``values[inside]`` on a fixed grid over value_range."""
    low, high = value_range
    slices = np.broadcast_to(np.arange(values.shape[0])[:, None, None], values.shape)[inside]
    index = np.floor((values[inside] - low) / (high - low) * HISTOGRAM_BINS).astype(np.int64)
    index = np.clip(index, 0, HISTOGRAM_BINS - 1) + slices * HISTOGRAM_BINS
    counts = np.bincount(index, minlength=values.shape[0] * HISTOGRAM_BINS)
    return counts.reshape(values.shape[0], HISTOGRAM_BINS).astype(np.float32)  # exact below 2^24


def _w1_from_counts(a: np.ndarray, b: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Wasserstein-1 between histograms on the same grid (last axis): bin width x sum |CDF_a - CDF_b|."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    width = (value_range[1] - value_range[0]) / HISTOGRAM_BINS
    cdf_a = np.cumsum(a, axis=-1) / a.sum(axis=-1, keepdims=True)
    cdf_b = np.cumsum(b, axis=-1) / b.sum(axis=-1, keepdims=True)
    return width * np.abs(cdf_a - cdf_b)[..., :-1].sum(axis=-1)


def radial_spectra(residual: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Radially averaged power spectrum of mask * e^{i phase} per slice: (S, min(H, W) // 2 + 1).

    |FFT|^2 normalised to sum 1 per slice, averaged over rings of radius round(|f| * min(H, W)) with
    f the frequency in cycles/pixel, from 0 up to the Nyquist frequency (corners beyond it dropped).
    """
    s, h, w = residual.shape
    size = min(h, w)
    power = np.abs(np.fft.fft2(np.where(mask, np.exp(1j * residual), 0))) ** 2
    power /= power.sum(axis=(-2, -1), keepdims=True)
    radius = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]) * size
    ring = np.rint(radius).astype(np.int64).ravel()
    keep = ring <= size // 2
    ring_count = np.bincount(ring[keep], minlength=size // 2 + 1)
    flat = power.reshape(s, -1)[:, keep]
    sums = np.stack([np.bincount(ring[keep], weights=row, minlength=size // 2 + 1) for row in flat])
    return sums / np.maximum(ring_count, 1)


def _spectrum_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean over radial bins of |log10 a - log10 b| (last axis), for set-averaged spectra."""
    tiny = 1e-30
    return np.abs(np.log10(a + tiny) - np.log10(b + tiny)).mean(axis=-1)


# ---- the distances ---------------------------------------------------------------------------------


def _summary(phase, magnitude, threshold: float = 0.1) -> PhaseSummary:
    """Everything the distances need from one set of phase maps, per slice."""
    phase, mag, mask = _volumes(phase, magnitude, threshold)
    residual = _remove_global_phase(phase, mag, mask)
    gradient, inside = gradient_magnitudes(phase, mask)
    if not inside.any(axis=(-2, -1)).all():
        raise ValueError("a slice's object has no interior pixel to take a phase gradient over")
    return PhaseSummary(
        features=_features(residual, mask),
        gradient_histogram=_histograms(gradient, inside, _GRADIENT_RANGE),
        phase_histogram=_histograms(residual, mask, _PHASE_RANGE),
        spectrum=radial_spectra(residual, mask),
    )


def _check_sets(fake, real, magnitude, real_magnitude, paired: bool | None):
    if paired is None:
        paired = real_magnitude is None
    if paired and real_magnitude is not None:
        raise ValueError("paired sets share one magnitude: pass real_magnitude only with paired=False")
    real_magnitude = magnitude if real_magnitude is None else real_magnitude
    if paired and _phase_volume(fake, "fake").shape != _phase_volume(real, "real").shape:
        raise ValueError("paired sets must have the same shape")
    return real_magnitude, paired


def _slice_errors(fake, real, magnitude, threshold: float) -> np.ndarray:
    """phaselab.mri.metrics.phase_error of each slice pair."""
    fake, real = _phase_volume(fake, "fake"), _phase_volume(real, "real")
    mag = _phase_volume(magnitude, "magnitude")
    return np.array([phase_error(f, r, m, threshold) for f, r, m in zip(fake, real, mag, strict=True)])


def _distances(fake: PhaseSummary, real: PhaseSummary, errors, fi: np.ndarray, ri: np.ndarray) -> dict:
    """All distances on the slices ``fi`` of fake and ``ri`` of real (index arrays, repeats allowed)."""
    fc = np.bincount(fi, minlength=len(fake.features)).astype(np.float64)
    rc = np.bincount(ri, minlength=len(real.features)).astype(np.float64)
    result = {
        "feature_fd": frechet_distance(fake.features[fi], real.features[ri]),
        "feature_kid": kernel_distance(fake.features[fi], real.features[ri]),
        "gradient_w1": float(
            _w1_from_counts(fc @ fake.gradient_histogram, rc @ real.gradient_histogram, _GRADIENT_RANGE)
        ),
        "phase_w1": float(
            _w1_from_counts(fc @ fake.phase_histogram, rc @ real.phase_histogram, _PHASE_RANGE)
        ),
        "spectrum_log10_l1": float(
            _spectrum_distance(fc @ fake.spectrum / fc.sum(), rc @ real.spectrum / rc.sum())
        ),
    }
    if errors is not None:
        result["phase_error"] = float(fc @ errors / fc.sum())
    return result


def phase_distances(
    fake, real, magnitude, *, real_magnitude=None, paired: bool | None = None, threshold: float = 0.1
) -> dict[str, float]:
    """Distances of the phase maps ``fake`` from ``real``; 0 (or, for KID, ~0) means alike, larger is worse.

    ``magnitude`` defines the object of ``fake`` and, unless ``real_magnitude`` is given, of ``real``.
    ``paired`` (default: True unless real_magnitude is given): slice i of fake was made for slice i of
    real. Keys (DISTANCE_KEYS, then PAIRED_KEYS when paired):

    - ``feature_fd``, ``feature_kid``: :func:`frechet_distance` and :func:`kernel_distance` between
      the :func:`phase_features` of the two sets;
    - ``gradient_w1``: Wasserstein-1 (rad/pixel) between the pooled in-object distributions of
      :func:`gradient_magnitudes`; ``phase_w1``: Wasserstein-1 (rad) between the pooled in-object
      phase distributions, each slice's magnitude-weighted circular mean removed and the result
      wrapped (distance on the line). Both on a HISTOGRAM_BINS grid (exact to one bin width, < 0.002).
      Villani, "Optimal Transport", 2009: W1 = integral of |F_a - F_b| for 1-D distributions;
    - ``spectrum_log10_l1``: mean over radial frequency bins (0 to Nyquist) of |log10 P_fake -
      log10 P_real|, P the set mean of :func:`radial_spectra` (cf. Durall et al., "Watch your
      up-convolution", CVPR 2020, for spectra of generated images);
    - ``phase_error`` (paired only): mean over slices of phaselab.mri.metrics.phase_error (mean
      absolute wrapped difference in the object, global phase removed, rad).
    """
    real_magnitude, paired = _check_sets(fake, real, magnitude, real_magnitude, paired)
    a = _summary(fake, magnitude, threshold)
    b = _summary(real, real_magnitude, threshold)
    errors = _slice_errors(fake, real, magnitude, threshold) if paired else None
    return _distances(a, b, errors, np.arange(len(a.features)), np.arange(len(b.features)))


def phase_distance_intervals(
    fake,
    real,
    magnitude,
    *,
    real_magnitude=None,
    paired: bool | None = None,
    threshold: float = 0.1,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Bootstrap intervals of :func:`phase_distances`: key -> (low, high), seeded.

    Slices are resampled with replacement ``n_boot`` times (numpy generator seeded with ``seed``):
    paired sets by the same indices, unpaired sets independently. Resampling with repeats biases the
    set-level distances (FD and KID of a resample with repeated slices come out larger), which can put
    a small estimate below all its replicates; so the interval is the percentile interval of the
    bias-corrected replicates, each minus b = mean(replicates) - estimate (Efron & Tibshirani, "An
    Introduction to the Bootstrap", 1993, sections 10 and 13): the ``level`` range of the estimate's
    sampling spread, centred where the estimate is. It does not remove the set-size bias of the
    estimate itself, which is the same for every source compared at the same set sizes. Lower bounds
    of the non-negative distances are clipped at 0 (KID may be negative). Cost: n_boot x the
    distances on the summaries, about 1.5 s in all for 96 slices each; sets beyond KID_SUBSET_SIZE
    slices pay KID's KID_SUBSETS subsets in every replicate (seconds each), so use a small n_boot.
    """
    if n_boot < 2 or not 0 < level < 1:
        raise ValueError(f"need n_boot >= 2 and 0 < level < 1, got {n_boot}, {level}")
    real_magnitude, paired = _check_sets(fake, real, magnitude, real_magnitude, paired)
    a = _summary(fake, magnitude, threshold)
    b = _summary(real, real_magnitude, threshold)
    errors = _slice_errors(fake, real, magnitude, threshold) if paired else None
    m, n = len(a.features), len(b.features)
    estimate = _distances(a, b, errors, np.arange(m), np.arange(n))
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {key: [] for key in estimate}
    for _ in range(n_boot):
        fi = rng.integers(0, m, m)
        ri = fi if paired else rng.integers(0, n, n)
        for key, value in _distances(a, b, errors, fi, ri).items():
            samples[key].append(value)
    tail = (1 - level) / 2
    intervals = {}
    for key, values in samples.items():
        corrected = np.asarray(values) - (np.mean(values) - estimate[key])
        low, high = (float(q) for q in np.quantile(corrected, [tail, 1 - tail]))
        if key != "feature_kid":
            low = max(low, min(0.0, estimate[key]))
        intervals[key] = (low, high)
    return intervals
