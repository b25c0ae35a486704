"""Building blocks of the SR3-style U-Net: noise-level embedding, residual block, attention.

Shapes are NCHW; the noise-level embedding is ``N x C_emb``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_encoding(noise_level: torch.Tensor, dim: int) -> torch.Tensor:
    """WaveGrad-style encoding of the continuous noise level sqrt(alpha_bar).

    ``noise_level``: shape ``N`` (or ``N x 1``). Returns ``N x dim``:
    ``[sin(g * f_k), cos(g * f_k)]`` with ``f_k = 10000 ** (-k / (dim/2))``, k < dim/2.
    Note the level itself (in [0, 1]) is used, not ``1000 * t`` as in DDPM.
    """
    level = noise_level.reshape(-1, 1).to(torch.float32)
    half = dim // 2
    freqs = torch.exp(-math.log(1e4) * torch.arange(half, device=level.device, dtype=torch.float32) / half)
    angles = level * freqs.unsqueeze(0)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class NoiseLevelEmbedding(nn.Module):
    """sqrt(alpha_bar) -> sinusoidal(dim) -> Linear(dim, 4 dim) -> Swish -> Linear(4 dim, dim)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.linear1 = nn.Linear(dim, dim * 4)
        self.linear2 = nn.Linear(dim * 4, dim)

    def forward(self, noise_level: torch.Tensor) -> torch.Tensor:
        h = self.linear1(sinusoidal_encoding(noise_level, self.dim))
        return self.linear2(F.silu(h))


class SelfAttention(nn.Module):
    """Single-head self-attention over all positions, with a residual connection.

    ``softmax(q^T k / sqrt(C)) v`` computed by ``scaled_dot_product_attention``.
    """

    def __init__(self, channels: int, norm_groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(norm_groups, channels)
        self.qkv = nn.Conv2d(channels, channels * 3, 1, bias=False)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1))
        out = out.squeeze(1).transpose(-1, -2).reshape(n, c, h, w)
        return x + self.proj(out)


class ResnetBlock(nn.Module):
    """GN-Swish-Conv, + Linear(noise embedding), GN-Swish-(Dropout)-Conv, + skip; optional attention.

    ``x -> h = conv1(swish(norm1(x))) + noise_proj(e);  h = conv2(drop(swish(norm2(h))));
    out = h + skip(x)``, then ``attn(out)`` when the block carries attention.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        emb_dim: int,
        norm_groups: int,
        dropout: float = 0.0,
        attention: bool = False,
    ) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(norm_groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.noise_proj = nn.Linear(emb_dim, out_channels)
        self.norm2 = nn.GroupNorm(norm_groups, out_channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        self.attn = SelfAttention(out_channels, norm_groups) if attention else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.noise_proj(emb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        h = h + self.skip(x)
        return self.attn(h) if self.attn is not None else h


class Downsample(nn.Module):
    """Strided 3x3 convolution, halving height and width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2 then a 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
