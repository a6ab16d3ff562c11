"""Phase sources behind one interface; importing this package registers the baselines."""

from phaselab.generators import baselines as _baselines  # noqa: F401  (fills the registry)
from phaselab.generators import gan as _gan  # noqa: F401  (registers "gan")
from phaselab.generators import phasegen as _phasegen  # noqa: F401  (registers "phasegen")
from phaselab.generators import sbdm as _sbdm  # noqa: F401  (registers "sbdm")
from phaselab.generators.base import (
    PhaseSource,
    available_phase_sources,
    create_phase_source,
    load_phase_source,
    phase_source_class,
    register_phase_source,
    slice_generators,
)

__all__ = [
    "PhaseSource",
    "available_phase_sources",
    "create_phase_source",
    "load_phase_source",
    "phase_source_class",
    "register_phase_source",
    "slice_generators",
]
