"""Turn the eps-predicting network into a denoiser of x_t given the condition y.

:class:`Denoiser` adds the condition and the x0 prediction to any ``net(x, level) -> (eps, P)``:
the U-Net itself, or the U-Net as inference runs it (:class:`gsad.network.inference_net.InferenceNet`).
"""

from __future__ import annotations

import torch
from torch import nn

from gsad.diffusion.schedules import predict_x0


class Denoiser:
    """Wraps a network ``net(cat[y, x_t], level) -> (eps_hat, P)`` for samplers.

    ``cond`` is the low-light image y (``N x 3 x H x W`` in [-1, 1]); the level is the
    continuous sqrt(alpha_bar) (a Python float or a tensor of shape N). ``net`` is a
    :class:`~gsad.network.unet.UNet`, an :class:`InferenceNet` or any module with that call.
    """

    def __init__(self, net: nn.Module, cond: torch.Tensor) -> None:
        self.net = net
        self.cond = cond

    @staticmethod
    def _levels(level: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        """The noise level as a float32 tensor of shape N on x_t's device."""
        return level.to(device=x_t.device, dtype=torch.float32).reshape(-1).expand(x_t.shape[0])

    def eps(self, x_t: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """eps_hat for x_t at noise level sqrt(alpha_bar) (shape N or scalar)."""
        return self.net(torch.cat([self.cond, x_t], dim=1), self._levels(level, x_t))[0]

    def x0(self, x_t: torch.Tensor, level: torch.Tensor, clip: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0_hat, eps_hat); x0_hat clamped to [-1, 1] when ``clip``."""
        eps = self.eps(x_t, level)
        x0 = predict_x0(x_t, self._levels(level, x_t), eps)
        return (x0.clamp(-1.0, 1.0) if clip else x0), eps
