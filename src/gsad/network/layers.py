"""Building blocks of the SR3-style U-Net: noise-level embedding, residual block, attention.

Shapes are NCHW; the noise-level embedding is ``N x C_emb``.

Inference fast paths (same module tree and parameters, outputs equal up to float rounding):
with gradients off (``torch.no_grad`` / ``torch.inference_mode``) the blocks run GroupNorm
then an in-place Swish, add residuals in place and fold a one-row noise term into the first
convolution's bias; with ``winograd=True`` they run large 3x3 convolutions on the CPU through
NNPACK's Winograd kernels (see :func:`conv3x3`). With gradients on, every path is the plain,
differentiable one used in training.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

#: Below this many output pixels NNPACK's Winograd convolution is slower than oneDNN's
#: direct one on AVX2 CPUs (measured on 16x24 and 32x48 maps with 64-512 channels).
WINOGRAD_MIN_PIXELS = 1024


@functools.cache
def nnpack_available() -> bool:
    """Whether this torch build has NNPACK (the call also initialises it; needed once)."""
    return bool(torch._nnpack_available())


def _inference() -> bool:
    """True when no autograd graph is being recorded: in-place fast paths are safe."""
    return not torch.is_grad_enabled()


def conv3x3(
    conv: nn.Conv2d, x: torch.Tensor, bias: torch.Tensor | None = None, winograd: bool = False
) -> torch.Tensor:
    """``conv(x)`` (optionally with ``bias`` replacing the conv's own), through NNPACK when it pays.

    NNPACK's Winograd F(6x6, 3x3) kernels do about a fifth of the multiplications of a direct
    3x3 convolution; on a 2-core AVX2 CPU they halve the U-Net's convolution time on maps of
    ``WINOGRAD_MIN_PIXELS`` or more. They differ from direct convolution by float rounding
    (about 1e-5 relative). Used only when asked, with gradients off, for float32 CPU tensors
    in NCHW layout, stride 1 and padding 1; otherwise the usual convolution runs.
    """
    bias = conv.bias if bias is None else bias
    if (
        winograd
        and _inference()
        and x.device.type == "cpu"
        and not torch.is_autocast_enabled("cpu")
        and x.dtype == torch.float32
        and conv.weight.dtype == torch.float32
        and x.is_contiguous()
        and x.shape[-1] * x.shape[-2] >= WINOGRAD_MIN_PIXELS
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and nnpack_available()
    ):
        return torch._nnpack_spatial_convolution(x, conv.weight, bias, [1, 1], [1, 1])
    return F.conv2d(x, conv.weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def norm_swish(norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    """``swish(norm(x))``; the Swish runs in place on the norm's output when gradients are off."""
    h = F.group_norm(x, norm.num_groups, norm.weight, norm.bias, norm.eps)
    return F.silu(h, inplace=_inference())


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

    ``softmax(q^T k / sqrt(C)) v`` computed by ``scaled_dot_product_attention`` on
    contiguous ``N x 1 x HW x C`` queries, keys and values (its fused CPU kernel needs them).
    """

    def __init__(self, channels: int, norm_groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(norm_groups, channels)
        self.qkv = nn.Conv2d(channels, channels * 3, 1, bias=False)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        # N x 3C x H x W -> three N x 1 x HW x C (a view of the convolution's output in channels-last)
        qkv = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).unflatten(-1, (3, c))
        q, k, v = (t.unsqueeze(1).contiguous() for t in qkv.unbind(2))
        out = F.scaled_dot_product_attention(q, k, v)
        out = self.proj(out.squeeze(1).transpose(1, 2).unflatten(-1, (h, w)))
        return out.add_(x) if _inference() else out + x


class ResnetBlock(nn.Module):
    """GN-Swish-Conv, + Linear(noise embedding), GN-Swish-(Dropout)-Conv, + skip; optional attention.

    ``x -> h = conv1(swish(norm1(x))) + noise_proj(e);  h = conv2(drop(swish(norm2(h))));
    out = h + skip(x)``, then ``attn(out)`` when the block carries attention.

    ``noise_bias`` (``N x C_out`` or ``1 x C_out``), when given, is ``noise_proj(e)`` computed
    beforehand (``UNet.noise_biases``); it depends only on the noise level.
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

    def forward(
        self,
        x: torch.Tensor,
        emb: torch.Tensor | None = None,
        noise_bias: torch.Tensor | None = None,
        winograd: bool = False,
    ) -> torch.Tensor:
        if noise_bias is None:
            noise_bias = self.noise_proj(emb)
        fast = _inference()
        if fast and noise_bias.shape[0] == 1:
            # one noise level for the whole batch: it is a per-channel constant, i.e. a conv bias
            h = conv3x3(self.conv1, norm_swish(self.norm1, x), self.conv1.bias + noise_bias[0], winograd)
        else:
            h = conv3x3(self.conv1, norm_swish(self.norm1, x), winograd=winograd)
            h = h.add_(noise_bias[:, :, None, None]) if fast else h + noise_bias[:, :, None, None]
        h = conv3x3(self.conv2, self.dropout(norm_swish(self.norm2, h)), winograd=winograd)
        h = h.add_(self.skip(x)) if fast else h + self.skip(x)
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

    def forward(self, x: torch.Tensor, winograd: bool = False) -> torch.Tensor:
        return conv3x3(self.conv, F.interpolate(x, scale_factor=2.0, mode="nearest"), winograd=winograd)
