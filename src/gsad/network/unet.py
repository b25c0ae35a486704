"""The conditional U-Net of GSAD (SR3 architecture plus an uncertainty head).

Input ``N x 6 x H x W``: the low-light condition y then the noisy image x_t, both in
[-1, 1]; and the noise level sqrt(alpha_bar) of shape ``N``. Output: the predicted noise
eps_hat (``N x 3 x H x W``) and, when built with the head, an uncertainty map P
(``N x 3 x H x W``, the log-scale of a Laplace likelihood; see ``gsad.losses.uncertainty``).

H and W must be multiples of ``config.stride``. No schedule, loss or device logic here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gsad.config import NetworkConfig
from gsad.network.layers import Downsample, NoiseLevelEmbedding, ResnetBlock, Upsample


class UNet(nn.Module):
    """SR3-style U-Net; see the module docstring for inputs and outputs."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        c0 = config.base_channels
        block = dict(emb_dim=c0, norm_groups=config.norm_groups, dropout=config.dropout)

        self.noise_embed = NoiseLevelEmbedding(c0)
        self.stem = nn.Conv2d(config.in_channels, c0, 3, padding=1)

        # Encoder: per level, `res_blocks` blocks then (except at the last level) a downsample.
        # `skips` records the channels of every feature the decoder will concatenate.
        skips = [c0]
        ch = c0
        self.encoder = nn.ModuleList()
        last = len(config.channel_mults) - 1
        for level, mult in enumerate(config.channel_mults):
            blocks = nn.ModuleList()
            for _ in range(config.res_blocks):
                blocks.append(ResnetBlock(ch, c0 * mult, attention=level in config.attn_levels, **block))
                ch = c0 * mult
                skips.append(ch)
            down = Downsample(ch) if level != last else None
            if down is not None:
                skips.append(ch)
            self.encoder.append(nn.ModuleDict({"blocks": blocks, **({"down": down} if down else {})}))

        self.middle = nn.ModuleList(
            [ResnetBlock(ch, ch, attention=True, **block), ResnetBlock(ch, ch, attention=False, **block)]
        )

        # Decoder: per level (deepest first), `res_blocks + 1` blocks each taking one skip.
        self.decoder = nn.ModuleList()
        for level in reversed(range(len(config.channel_mults))):
            out_ch = c0 * config.channel_mults[level]
            blocks = nn.ModuleList()
            for _ in range(config.res_blocks + 1):
                blocks.append(
                    ResnetBlock(ch + skips.pop(), out_ch, attention=level in config.attn_levels, **block)
                )
                ch = out_ch
            up = Upsample(ch) if level != 0 else None
            self.decoder.append(nn.ModuleDict({"blocks": blocks, **({"up": up} if up else {})}))

        self.out_norm = nn.GroupNorm(config.norm_groups, ch)
        self.out_conv = nn.Conv2d(ch, config.out_channels, 3, padding=1)
        self.uncertainty_head = (
            nn.Sequential(
                nn.Conv2d(ch, ch, 3, padding=1),
                nn.ELU(),
                nn.Conv2d(ch, ch, 3, padding=1),
                nn.ELU(),
                nn.Conv2d(ch, 3, 3, padding=1),
                nn.ELU(),
            )
            if config.uncertainty_head
            else None
        )

    def features(self, x: torch.Tensor, noise_level: torch.Tensor) -> torch.Tensor:
        """The last decoder features (``N x base_channels x H x W``) shared by both heads."""
        stride = self.config.stride
        if x.shape[-1] % stride or x.shape[-2] % stride:
            raise ValueError(f"UNet input {tuple(x.shape[-2:])} is not a multiple of the stride {stride}")
        emb = self.noise_embed(noise_level.reshape(-1).expand(x.shape[0]) if noise_level.numel() == 1 else noise_level)

        # 1. encoder, keeping every intermediate feature for the skips
        h = self.stem(x)
        feats = [h]
        for level in self.encoder:
            for blk in level["blocks"]:
                h = blk(h, emb)
                feats.append(h)
            if "down" in level:
                h = level["down"](h)
                feats.append(h)
        # 2. middle
        for blk in self.middle:
            h = blk(h, emb)
        # 3. decoder, consuming skips in reverse order
        for level in self.decoder:
            for blk in level["blocks"]:
                h = blk(torch.cat([h, feats.pop()], dim=1), emb)
            if "up" in level:
                h = level["up"](h)
        return h

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(eps_hat, P) for input x (``N x 6 x H x W``) and noise level (``N``); P is None without the head."""
        h = self.features(x, noise_level)
        eps = self.out_conv(F.silu(self.out_norm(h)))
        unc = self.uncertainty_head(h) if self.uncertainty_head is not None else None
        return eps, unc


def count_parameters(module: nn.Module, include_uncertainty: bool = True) -> int:
    """Number of parameters, optionally leaving out the uncertainty head."""
    total = 0
    for name, p in module.named_parameters():
        if not include_uncertainty and name.startswith("uncertainty_head."):
            continue
        total += p.numel()
    return total
