"""The phase-source interface, its name registry, checkpoints and per-slice random generators.

A phase source maps magnitude images to phase maps. It never changes the magnitude: complex images and
k-space are built by ``phaselab.mri.phase`` from the caller's magnitude and the source's phase.
"""

import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from phaselab.data.errors import DataError

SliceSeed = int | Sequence[int]

_REGISTRY: dict[str, type["PhaseSource"]] = {}
_S = TypeVar("_S", bound=type["PhaseSource"])


class PhaseSource(ABC):
    """Supplies a phase map in (-pi, pi] for each magnitude image.

    Reproducibility contract for :meth:`sample`: slice ``i`` of a batch draws its randomness from its
    own generator keyed by ``(seed, i)`` (or ``(seed[i], 0)`` when ``seed`` is a per-slice sequence),
    see :func:`slice_generators`. So a slice's phase depends only on its magnitude and its key, never
    on the other slices in the batch: ``sample(m, seed=s)[:k] == sample(m[:k], seed=s)``, and a caller
    that passes per-slice seeds (e.g. derived from a global slice index) gets the same phases however
    the data are batched or sharded.
    """

    name: str = ""  # set by @register_phase_source
    requires_training: bool = False
    stochastic: bool = True  # False: every seed gives the same phase (gt, zero), so one draw serves all

    def __init__(self, **config: Any):
        self.config: dict[str, Any] = dict(config)

    def fit(self, magnitudes: torch.Tensor, phases: torch.Tensor, **kw: Any) -> dict:
        """Learn p(phase | magnitude) from paired data; returns training metrics. Baselines learn nothing."""
        return {}

    @abstractmethod
    def sample(
        self, magnitude: torch.Tensor, *, seed: SliceSeed, true_phase: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Phase maps (B, H, W) float32 in (-pi, pi] for magnitudes (B, H, W) float32."""

    def state_dict(self) -> dict[str, Any]:
        """Learned state (tensors); empty for sources without parameters."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"phase source {self.name!r} has no learned state, got keys {sorted(state)}")

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        """Atomically write ``{"name", "config", "state_dict"}`` for :func:`load_phase_source`, and
        ``meta`` (plain JSON values: e.g. the ``data_key`` it was trained on) when given."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"name": self.name, "config": self.config, "state_dict": self.state_dict()}
        if meta is not None:
            payload["meta"] = json.loads(json.dumps(meta))  # plain values only: weights_only loads it
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(payload, f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"


def register_phase_source(name: str) -> Callable[[_S], _S]:
    """Class decorator: make a :class:`PhaseSource` subclass constructible by ``name``."""

    def decorate(cls: _S) -> _S:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"phase source {name!r} is already registered to {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def available_phase_sources() -> list[str]:
    return sorted(_REGISTRY)


def phase_source_class(name: str) -> type[PhaseSource]:
    """The registered class (e.g. to ask ``requires_training`` without building networks)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown phase source {name!r}; known: {', '.join(available_phase_sources())}")
    return _REGISTRY[name]


def create_phase_source(name: str, **config: Any) -> PhaseSource:
    """Build a registered phase source from its name and config keywords."""
    return phase_source_class(name)(**config)


def load_phase_source(path: str | Path) -> PhaseSource:
    """Rebuild a phase source saved with :meth:`PhaseSource.save`; raises DataError on a bad file."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(path, "phase-source checkpoint not found") from None
    except Exception as err:  # truncated or not a torch file: torch raises several types
        raise DataError(
            path, f"not a readable phase-source checkpoint ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(payload, dict) or not {"name", "config", "state_dict"} <= payload.keys():
        raise DataError(path, "checkpoint must be a dict with keys 'name', 'config', 'state_dict'")
    name = payload["name"]
    if name not in _REGISTRY:
        raise DataError(path, f"unknown phase source {name!r}; known: {', '.join(available_phase_sources())}")
    try:
        source = create_phase_source(name, **payload["config"])
        source.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, KeyError, RuntimeError) as err:
        raise DataError(path, f"state does not fit phase source {name!r}: {err}") from err
    return source


PACKAGE_PREFIX = "phaselab:"  # a checkpoint path inside the installed package, e.g. the demo's
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def resolve_checkpoint(path: str | Path) -> Path:
    """A configured checkpoint path: ``phaselab:<path>`` is inside the installed ``phaselab`` package
    (the shipped demo checkpoints: found from any working directory); anything else is a file path,
    relative ones against the working directory."""
    text = str(path)
    if text.startswith(PACKAGE_PREFIX):
        return _PACKAGE_ROOT / text[len(PACKAGE_PREFIX) :]
    return Path(text).expanduser().resolve()


def checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The ``meta`` a checkpoint was saved with ({} when none); DataError on an unreadable file."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(path, "phase-source checkpoint not found") from None
    except Exception as err:
        raise DataError(path, f"not a readable phase-source checkpoint ({type(err).__name__})") from err
    meta = payload.get("meta") if isinstance(payload, dict) else None
    return meta if isinstance(meta, dict) else {}


def check_checkpoint_data(path: str | Path, data_key: str) -> None:
    """Refuse a checkpoint that records the data it was trained on when those are not ``data_key``:
    its genTrain may hold this sweep's test patients, or other data entirely."""
    recorded = checkpoint_meta(path).get("data_key")
    if recorded is not None and recorded != data_key:
        raise DataError(
            path,
            f"this generator was trained on prepared data {recorded}, but this sweep's data are "
            f"{data_key}: its training slices may be other data or this sweep's test patients; train "
            "it on these data instead (remove generators.<name>.checkpoint), or retrain the checkpoint "
            "(scripts/train_demo_generators.py for the demo's)",
        )


def slice_generators(seed: SliceSeed, batch: int) -> list[torch.Generator]:
    """One CPU generator per slice, keyed by ``(seed, i)`` or, for per-slice seeds, ``(seed[i], 0)``.

    Keys go through numpy's SeedSequence so that neighbouring keys give unrelated streams.
    """
    if isinstance(seed, int | np.integer):
        keys = [(int(seed), i) for i in range(batch)]
    else:
        seeds = [int(s) for s in seed]
        if len(seeds) != batch:
            raise ValueError(f"got {len(seeds)} per-slice seeds for a batch of {batch}")
        keys = [(s, 0) for s in seeds]
    generators = []
    for key in keys:
        if min(key) < 0:
            raise ValueError(f"seeds must be non-negative, got {key[0]}")
        state = np.random.SeedSequence(key).generate_state(1, dtype=np.uint64)[0]
        generators.append(torch.Generator().manual_seed(int(state) >> 1))
    return generators


def check_magnitude(magnitude: torch.Tensor) -> None:
    if magnitude.ndim != 3 or magnitude.is_complex():
        raise ValueError(
            f"magnitude must be a real (B, H, W) tensor, got {tuple(magnitude.shape)} {magnitude.dtype}"
        )
