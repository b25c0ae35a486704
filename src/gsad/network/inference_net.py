"""The U-Net as inference runs it: eps only, noise-level terms cached per level, optional
Winograd convolutions, channels-last layout and lower precision (:mod:`gsad.runtime.fastpath` chooses).

Running the network fast is the network's business, not the diffusion's: the samplers see it
only through :class:`~gsad.diffusion.denoiser.Denoiser`.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from gsad.config import PRECISION_NAMES
from gsad.network.unet import UNet

#: Names of the ``precision`` option (:data:`gsad.config.PRECISION_NAMES`) and the autocast dtype
#: each selects (None: plain float32).
PRECISIONS: dict[str, torch.dtype | None] = dict(
    zip(PRECISION_NAMES, (None, torch.bfloat16, torch.float16), strict=True)
)


class InferenceNet(nn.Module):
    """A U-Net run for sampling: ``forward(x, level) -> (eps_hat, None)``, faster, same weights.

    ``eps_hat`` is float32 in NCHW layout whatever the options. For inference only (under
    ``torch.no_grad`` or ``torch.inference_mode``); training uses the U-Net itself.

    - the uncertainty head is skipped (samplers need eps only);
    - :meth:`precompute` computes the noise-level terms of every level of a schedule in one
      batch; later calls at one of those levels (one level for the whole batch) reuse them;
    - ``winograd``: 3x3 convolutions through NNPACK's Winograd kernels on the CPU
      (:func:`gsad.network.layers.conv3x3`);
    - ``channels_last``: the input, hence every feature map, in channels-last layout (helps
      cuDNN; on the CPU slower than NCHW with Winograd, which needs NCHW);
    - ``precision``: ``"fp32"``, or autocast of the network to ``"bf16"`` / ``"fp16"``.
    """

    def __init__(
        self, unet: UNet, precision: str = "fp32", channels_last: bool = False, winograd: bool = False
    ) -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.unet = unet
        self.config = unet.config
        self.precision = precision
        self.channels_last = channels_last
        self.winograd = winograd
        self._biases: dict[float, list[torch.Tensor]] = {}

    def _autocast(self, device_type: str) -> contextlib.AbstractContextManager:
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device_type, dtype=dtype)

    def precompute(self, levels: torch.Tensor) -> None:
        """Compute and keep each block's noise term for every level in ``levels`` (shape T).

        Replaces what was kept before (so weights changed since are picked up).
        """
        device = next(self.unet.parameters()).device
        levels = levels.reshape(-1).to(device=device, dtype=torch.float32)
        with torch.no_grad(), self._autocast(device.type):
            rows = self.unet.noise_biases(levels)
        self._biases = {lvl: [b[i : i + 1] for b in rows] for i, lvl in enumerate(levels.tolist())}

    def _cached(self, level: torch.Tensor) -> list[torch.Tensor] | None:
        if not self._biases or torch.is_grad_enabled():
            return None
        flat = level.reshape(-1)
        if flat.numel() > 1 and not bool((flat == flat[0]).all()):
            return None
        return self._biases.get(float(flat[0]))

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> tuple[torch.Tensor, None]:
        biases = self._cached(level)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast(x.device.type):
            eps, _ = self.unet(x, level, uncertainty=False, noise_biases=biases, winograd=self.winograd)
        return eps.float().contiguous(), None
