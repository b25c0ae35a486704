"""Uncertainty losses of GSAD: the stage-1 aleatoric loss and the stage-2 pixel loss.

Stage 1 trains the U-Net's second head to predict a per-pixel log-uncertainty P next to
the noise estimate eps_hat (:func:`stage1_loss`). Stage 2 turns a frozen stage-1 model's
P into weights in [0.5, 1] (:func:`uncertainty_weights`) that scale the L1 noise loss
(:func:`pixel_loss`), so uncertain pixels count up to twice as much as certain ones.

All tensors are NCHW float in the network's range; the losses reduce to scalars.
"""

from __future__ import annotations

import torch

__all__ = ["pixel_loss", "stage1_loss", "uncertainty_weights"]


def _check_same_shape(eps_hat: torch.Tensor, eps: torch.Tensor) -> None:
    if eps_hat.shape != eps.shape:
        raise ValueError(f"eps_hat and eps must have the same shape, got {tuple(eps_hat.shape)} and {tuple(eps.shape)}")


def stage1_loss(eps_hat: torch.Tensor, eps: torch.Tensor, log_uncertainty: torch.Tensor) -> torch.Tensor:
    """Laplace-style aleatoric loss of stage 1, averaged per pixel.

        L = mean( exp(-P) * |eps_hat - eps| + 2 * P ),

    the mean taken over all B * C * H * W elements. With r = eps_hat - eps this is, up to
    a constant, twice the mean negative log-likelihood of r under a Laplace distribution
    with scale s = 2 exp(P):  NLL = |r| / s + log(2 s) = (exp(-P) |r| + 2 P) / 2 + log 4.
    So the factor 2 of the paper is kept and is a proper likelihood: per pixel the
    minimiser is P* = log(|r| / 2), and P must trade fit against confidence.

    Normalisation (differs from the reference): the reference computes
    (sum exp(-P) |r| + 2 * mean(P)) and then divides the *whole* loss by M = B*C*H*W,
    i.e. mean(exp(-P) |r|) + 2 mean(P) / M. Its P term is M times (about 2e5 for a batch
    of eight 96 x 96 crops) weaker, the minimiser becomes P* = log(M |r| / 2), which
    depends on batch and crop size: P settles about log M (~12) higher, where exp(-P)
    shrinks the noise term, and its gradient, by ~1/M. Here both terms are per-pixel
    means, so P stays O(1) and independent of M. Stage 2 min-max normalises P per sample
    and channel, so the constant offset log M makes no difference to its weights.

    Args:
        eps_hat: predicted noise, B x C x H x W.
        eps: true noise, same shape.
        log_uncertainty: P, the uncertainty head's output, same shape (or broadcastable).

    Returns:
        Scalar tensor, differentiable w.r.t. ``eps_hat`` and ``log_uncertainty``.

    Raises:
        ValueError: ``eps_hat`` and ``eps`` differ in shape.
    """
    _check_same_shape(eps_hat, eps)
    residual = (eps_hat - eps).abs()
    per_pixel = torch.exp(-log_uncertainty) * residual + 2.0 * log_uncertainty
    return per_pixel.mean()


def uncertainty_weights(log_uncertainty: torch.Tensor) -> torch.Tensor:
    """Stage-2 pixel weights from a frozen stage-1 model's uncertainty P.

    P is min-max normalised per sample and channel over H * W and mapped to [0.5, 1]:

        w = 0.5 + 0.5 * (P - min_hw P) / (max_hw P - min_hw P + 1e-6).

    The least uncertain pixel of each (sample, channel) gets 0.5, the most uncertain one
    1 (to within 1e-6 relative); a constant channel gets 0.5 everywhere.

    Args:
        log_uncertainty: P, B x C x H x W float.

    Returns:
        Detached weights, same shape, dtype and device as P.

    Raises:
        ValueError: P is not 4-D.
    """
    if log_uncertainty.dim() != 4:
        raise ValueError(f"expected a B x C x H x W tensor, got shape {tuple(log_uncertainty.shape)}")
    p = log_uncertainty.detach()
    flat = p.flatten(2)  # B x C x HW
    p_min = flat.amin(dim=-1)[..., None, None]
    p_max = flat.amax(dim=-1)[..., None, None]
    return 0.5 + 0.5 * (p - p_min) / (p_max - p_min + 1e-6)


def pixel_loss(eps_hat: torch.Tensor, eps: torch.Tensor, weights: torch.Tensor, scale: float = 10.0) -> torch.Tensor:
    """Uncertainty-weighted L1 noise loss of stage 2.

        L_pix = scale * mean( |w * (eps_hat - eps)| ),

    the mean over all B * C * H * W elements (the reference's sum / (B*C*H*W), lambda = 10).

    Args:
        eps_hat: predicted noise, B x C x H x W.
        eps: true noise, same shape.
        weights: w from :func:`uncertainty_weights`, same shape (or broadcastable).
        scale: lambda, the loss weight.

    Returns:
        Scalar tensor, differentiable w.r.t. ``eps_hat``.

    Raises:
        ValueError: ``eps_hat`` and ``eps`` differ in shape.
    """
    _check_same_shape(eps_hat, eps)
    return scale * (weights * (eps_hat - eps)).abs().mean()
