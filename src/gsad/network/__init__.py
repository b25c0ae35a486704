"""The GSAD network: a conditional SR3-style U-Net with an uncertainty head."""

from gsad.network.unet import UNet, count_parameters

__all__ = ["UNet", "count_parameters"]
