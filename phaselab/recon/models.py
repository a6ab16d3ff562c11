"""The reconstruction models a trial can train, each behind one interface: ``model(masked_kspace,
mask_columns) -> k-space`` (B, H, W), magnitude image ``|ifft2c(k-space)|``.

``varnet``: the single-coil E2E VarNet of the first study; ``complex_unet``: PhaseGen's complex residual
U-Net with data consistency in the downsampling path (SPEC section 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from torch import nn

from phaselab.recon.complex_unet import SIZES, ComplexResUNet
from phaselab.recon.varnet import VarNet

MODEL_KINDS = ("varnet", "complex_unet")


@dataclass
class VarNetConfig:
    kind: ClassVar[str] = "varnet"
    cascades: int = 12
    chans: int = 18
    pools: int = 4

    def build(self) -> VarNet:
        return VarNet(self.cascades, self.chans, self.pools)


@dataclass
class ComplexUNetConfig:
    """``size``: "small" (~209k parameters) or "large" (~3.3M), the study's two networks; ``features``
    (widths per level) overrides it; ``blocks``: residual blocks after each pooling (the study: 1)."""

    kind: ClassVar[str] = "complex_unet"
    size: Literal["small", "large"] = "small"
    dropout: float = 0.1
    features: list[int] | None = None
    blocks: int = 1

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"complex_unet size must be one of {sorted(SIZES)}, got {self.size!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def build(self) -> ComplexResUNet:
        features = self.features if self.features is not None else SIZES[self.size]
        return ComplexResUNet(features, self.blocks, self.dropout)


ModelConfig = VarNetConfig | ComplexUNetConfig


def build_model_config(kind: str, settings: dict[str, Any]) -> ModelConfig:
    """The model config of ``kind`` ("varnet" or "complex_unet") from its section's keywords."""
    if kind == "varnet":
        return VarNetConfig(**settings)
    if kind == "complex_unet":
        return ComplexUNetConfig(**settings)
    raise ValueError(f"unknown reconstruction model {kind!r}; known: {', '.join(MODEL_KINDS)}")


def build_model(kind: str, settings: dict[str, Any]) -> nn.Module:
    return build_model_config(kind, settings).build()
