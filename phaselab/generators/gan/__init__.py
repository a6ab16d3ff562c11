"""pix2pix phase generator ("gan"): U-Net generator + PatchGAN discriminator, GAN + 100 L1 loss."""

from phaselab.generators.gan.networks import PatchDiscriminator, UNetGenerator, receptive_field
from phaselab.generators.gan.source import GANPhaseSource, pix2pix_train_config

__all__ = ["GANPhaseSource", "PatchDiscriminator", "UNetGenerator", "pix2pix_train_config", "receptive_field"]
