"""Realism before rank: are a generator's samples closer to acquired phase than a smooth random field?

A learned generator is checked on held-out data (genVal) against the acquired phase with the weight-free
distances of ``phaselab.mri.phase_metrics``, and compared with the ``smooth`` baseline on the same
slices (SPEC section 8). It is *unrealistic* when it is farther from the acquired phase than ``smooth``
on a majority of the distances, whatever its training loss says; the grid then refuses it unless the
user insists (``generators.<name>.allow_unrealistic``). ``score`` (the geometric mean of the distance
ratios to ``smooth``, < 1 is closer) ranks trials of a search by the quality of their samples.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from phaselab.generators.base import PhaseSource, create_phase_source
from phaselab.mri.phase_metrics import DISTANCE_KEYS, phase_distances

BASELINE = "smooth"


@dataclass(frozen=True)
class RealismReport:
    """Distances (source vs acquired phase, and the baseline's) on the same slices."""

    source: str
    distances: dict[str, float]
    baseline: str
    baseline_distances: dict[str, float]
    slices: int
    worse: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        worse = tuple(k for k in DISTANCE_KEYS if self.distances[k] > self.baseline_distances[k])
        object.__setattr__(self, "worse", worse)

    @property
    def realistic(self) -> bool:
        """Not farther than the baseline on a majority of the weight-free distances."""
        return len(self.worse) <= len(DISTANCE_KEYS) // 2

    @property
    def score(self) -> float:
        """Geometric mean over the weight-free distances of distance / baseline distance (< 1: closer)."""
        ratios = [
            max(self.distances[k], 1e-12) / max(self.baseline_distances[k], 1e-12) for k in DISTANCE_KEYS
        ]
        return math.exp(sum(math.log(r) for r in ratios) / len(ratios))

    def summary(self) -> str:
        verdict = "realistic" if self.realistic else "UNREALISTIC"
        pairs = ", ".join(
            f"{k} {self.distances[k]:.4g} vs {self.baseline_distances[k]:.4g}" for k in DISTANCE_KEYS
        )
        return (
            f"{self.source}: {verdict}: farther from the acquired phase than {self.baseline} on "
            f"{len(self.worse)} of {len(DISTANCE_KEYS)} distances, score {self.score:.3f} "
            f"(< 1 is closer than {self.baseline}; {self.slices} slices; {pairs})"
        )

    def as_metrics(self, prefix: str = "realism_") -> dict[str, float]:
        metrics = {f"{prefix}{k}": float(v) for k, v in self.distances.items()}
        metrics.update({f"{prefix}{self.baseline}_{k}": float(v) for k, v in self.baseline_distances.items()})
        metrics[f"{prefix}score"] = self.score
        metrics[f"{prefix}pass"] = float(self.realistic)
        return metrics

    def as_dict(self) -> dict:
        return {**asdict(self), "realistic": self.realistic, "score": self.score}

    @classmethod
    def from_dict(cls, data: dict) -> RealismReport:
        keys = ("source", "distances", "baseline", "baseline_distances", "slices")
        return cls(**{k: data[k] for k in keys})


class UnrealisticGenerator(ValueError):
    """A generator's samples are farther from the acquired phase than the smooth baseline's."""

    def __init__(self, name: str, report: RealismReport):
        self.name, self.report = name, report
        super().__init__(
            f"refusing generator {report.summary()}; to use it anyway: "
            f"--set generators.{name}.allow_unrealistic=true"
        )


def draw(source: PhaseSource, magnitude: torch.Tensor, seed: int, batch_size: int = 16) -> torch.Tensor:
    """Samples (S, H, W) of ``source`` for ``magnitude``, slice i with per-slice seed ``seed + i``."""
    phases = []
    with torch.no_grad():
        for start in range(0, magnitude.shape[0], batch_size):
            chunk = magnitude[start : start + batch_size]
            seeds = list(range(seed + start, seed + start + chunk.shape[0]))
            phases.append(source.sample(chunk, seed=seeds).float().cpu())
    return torch.cat(phases)


def check_realism(
    source: PhaseSource,
    magnitude: torch.Tensor,
    true_phase: torch.Tensor,
    *,
    seed: int = 0,
    max_slices: int | None = 64,
    batch_size: int = 16,
) -> RealismReport:
    """Sample ``source`` and the ``smooth`` baseline for the same held-out magnitudes and measure both
    against the acquired phase. ``max_slices`` evenly spaced slices keep it affordable for diffusion
    samplers (None: all)."""
    if max_slices is not None and magnitude.shape[0] > max_slices:
        keep = torch.linspace(0, magnitude.shape[0] - 1, max_slices).round().long()
        magnitude, true_phase = magnitude[keep], true_phase[keep]
    baseline = create_phase_source(BASELINE)
    found = {}
    for name, candidate in ((source.name, source), (BASELINE, baseline)):
        sample = draw(candidate, magnitude, seed, batch_size)
        found[name] = phase_distances(sample.numpy(), true_phase.numpy(), magnitude.numpy(), paired=True)
    return RealismReport(source.name, found[source.name], BASELINE, found[BASELINE], magnitude.shape[0])
