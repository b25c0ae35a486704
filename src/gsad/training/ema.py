"""Exponential moving average of the trained weights: what checkpoints and validation use.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Exponential moving average of a model's weights (the inference model of a run).

    After step s (1-based) with n = s - ``start``:

        ema <- model                                    if n <= 0
        ema <- d ema + (1 - d) model, d = min(decay, (1 + n) / (10 + n))   otherwise.

    The warm-up of d lets the average follow the fast early changes, so short runs give
    usable EMA weights (d reaches 0.9999 after ~90k steps). Buffers are copied.
    """

    def __init__(self, model: nn.Module, decay: float, start: int = 0) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.start = decay, start

    def rate(self, step: int) -> float:
        """The decay d applied after ``step`` (0 means a plain copy)."""
        n = step - self.start
        return 0.0 if n <= 0 else min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = self.rate(step)
        for ema_p, p in zip(self.model.parameters(), model.parameters(), strict=True):
            if d == 0.0:
                ema_p.copy_(p)
            else:
                ema_p.lerp_(p.detach(), 1.0 - d)
        for ema_b, b in zip(self.model.buffers(), model.buffers(), strict=True):
            ema_b.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
