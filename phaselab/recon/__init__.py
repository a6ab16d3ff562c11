"""Downstream reconstruction: single-coil VarNet and PhaseGen's complex U-Net, SSIM loss, one worker's
training loop, evaluation."""

from phaselab.recon.complex_unet import ComplexResUNet
from phaselab.recon.data import KspaceSlices, slices_from_images
from phaselab.recon.evaluate import EvalResult, evaluate_reconstruction
from phaselab.recon.losses import SSIMLoss
from phaselab.recon.models import (
    MODEL_KINDS,
    ComplexUNetConfig,
    VarNetConfig,
    build_model,
    build_model_config,
)
from phaselab.recon.train import TrainConfig, TrainResult, train_varnet
from phaselab.recon.varnet import VarNet

__all__ = [
    "MODEL_KINDS",
    "ComplexResUNet",
    "ComplexUNetConfig",
    "EvalResult",
    "KspaceSlices",
    "SSIMLoss",
    "TrainConfig",
    "TrainResult",
    "VarNet",
    "VarNetConfig",
    "build_model",
    "build_model_config",
    "evaluate_reconstruction",
    "slices_from_images",
    "train_varnet",
]
