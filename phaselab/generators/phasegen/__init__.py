"""PhaseGen (SPEC section 5): complex-valued DDPM with a complex residual U-Net, registered as "phasegen"."""

from phaselab.generators.phasegen.source import PhaseGenPhaseSource, paper_train_config

__all__ = ["PhaseGenPhaseSource", "paper_train_config"]
