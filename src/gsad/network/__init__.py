"""The GSAD network: a conditional SR3-style U-Net with an uncertainty head, and how inference runs it."""

from gsad.network.inference_net import PRECISIONS, InferenceNet
from gsad.network.unet import UNet, count_parameters

__all__ = ["PRECISIONS", "InferenceNet", "UNet", "count_parameters"]
