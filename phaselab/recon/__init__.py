"""Downstream reconstruction: single-coil VarNet, SSIM loss, one worker's training loop, evaluation."""

from phaselab.recon.data import KspaceSlices, slices_from_images
from phaselab.recon.evaluate import EvalResult, evaluate_reconstruction
from phaselab.recon.losses import SSIMLoss
from phaselab.recon.train import TrainConfig, TrainResult, VarNetConfig, train_varnet
from phaselab.recon.varnet import VarNet

__all__ = [
    "EvalResult",
    "KspaceSlices",
    "SSIMLoss",
    "TrainConfig",
    "TrainResult",
    "VarNet",
    "VarNetConfig",
    "evaluate_reconstruction",
    "slices_from_images",
    "train_varnet",
]
