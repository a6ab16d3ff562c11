"""phaselab: phase-map synthesis research platform (generators, synthetic k-space, VarNet sweeps)."""

__version__ = "0.1.0"
