"""The conditional U-Net of GSAD (SR3 architecture plus an uncertainty head).

Input ``N x 6 x H x W``: the low-light condition y then the noisy image x_t, both in
[-1, 1]; and the noise level sqrt(alpha_bar) of shape ``N``. Output: the predicted noise
eps_hat (``N x 3 x H x W``) and, when built with the head, an uncertainty map P
(``N x 3 x H x W``, the log-scale of a Laplace likelihood; see ``gsad.losses.uncertainty``).

H and W must be multiples of ``config.stride``. No schedule, loss or device logic here.

For inference, ``forward`` can skip the uncertainty head, take the noise-level terms
precomputed by :meth:`UNet.noise_biases` (they depend only on the level, so a sampler can
compute a whole schedule's at once) and use Winograd convolutions (``gsad.network.layers``).
"""

from __future__ import annotations

import torch
from torch import nn

from gsad.config import NetworkConfig
from gsad.network.layers import Downsample, NoiseLevelEmbedding, ResnetBlock, Upsample, conv3x3, norm_swish


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

    def res_blocks(self) -> list[ResnetBlock]:
        """Every residual block in the order ``features`` runs them (encoder, middle, decoder)."""
        blocks = [blk for level in self.encoder for blk in level["blocks"]]
        blocks += list(self.middle)
        blocks += [blk for level in self.decoder for blk in level["blocks"]]
        return blocks

    def noise_biases(self, noise_level: torch.Tensor) -> list[torch.Tensor]:
        """Each residual block's noise term ``noise_proj(embed(level))``, in ``res_blocks`` order.

        ``noise_level``: shape ``N``. Returns one ``N x C_block`` tensor per block; a row
        computed for one level broadcasts over a batch at that level.
        """
        emb = self.noise_embed(noise_level.reshape(-1))
        return [blk.noise_proj(emb) for blk in self.res_blocks()]

    def features(
        self,
        x: torch.Tensor,
        noise_level: torch.Tensor,
        noise_biases: list[torch.Tensor] | None = None,
        winograd: bool = False,
    ) -> torch.Tensor:
        """The last decoder features (``N x base_channels x H x W``) shared by both heads.

        ``noise_biases``: the result of :meth:`noise_biases` for ``noise_level``, if already known.
        """
        stride = self.config.stride
        if x.shape[-1] % stride or x.shape[-2] % stride:
            raise ValueError(f"UNet input {tuple(x.shape[-2:])} is not a multiple of the stride {stride}")
        if noise_biases is None:
            noise_biases = self.noise_biases(noise_level.reshape(-1).expand(x.shape[0]))
        biases = iter(noise_biases)

        # 1. encoder, keeping every intermediate feature for the skips
        h = conv3x3(self.stem, x, winograd=winograd)
        feats = [h]
        for level in self.encoder:
            for blk in level["blocks"]:
                h = blk(h, noise_bias=next(biases), winograd=winograd)
                feats.append(h)
            if "down" in level:
                h = level["down"](h)
                feats.append(h)
        # 2. middle
        for blk in self.middle:
            h = blk(h, noise_bias=next(biases), winograd=winograd)
        # 3. decoder, consuming skips in reverse order
        for level in self.decoder:
            for blk in level["blocks"]:
                h = blk(torch.cat([h, feats.pop()], dim=1), noise_bias=next(biases), winograd=winograd)
            if "up" in level:
                h = level["up"](h, winograd=winograd)
        return h

    def forward(
        self,
        x: torch.Tensor,
        noise_level: torch.Tensor,
        *,
        uncertainty: bool = True,
        noise_biases: list[torch.Tensor] | None = None,
        winograd: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(eps_hat, P) for input x (``N x 6 x H x W``) and noise level (``N``); P is None without the head.

        Inference options: ``uncertainty=False`` skips the uncertainty head (P is None; samplers
        only need eps); ``noise_biases`` as in :meth:`features`; ``winograd`` see
        :func:`gsad.network.layers.conv3x3`.
        """
        h = self.features(x, noise_level, noise_biases, winograd)
        eps = conv3x3(self.out_conv, norm_swish(self.out_norm, h), winograd=winograd)
        unc = self.uncertainty_head(h) if uncertainty and self.uncertainty_head is not None else None
        return eps, unc


def count_parameters(module: nn.Module, include_uncertainty: bool = True) -> int:
    """Number of parameters, optionally leaving out the uncertainty head."""
    total = 0
    for name, p in module.named_parameters():
        if not include_uncertainty and name.startswith("uncertainty_head."):
            continue
        total += p.numel()
    return total
