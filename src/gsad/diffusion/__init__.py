"""Diffusion: schedules, the denoiser wrapper, the posterior step and samplers (independent of the network)."""

from gsad.diffusion.denoiser import Denoiser
from gsad.diffusion.posterior import posterior_sample, posterior_step
from gsad.diffusion.samplers import SAMPLERS, initial_state, sample_ddim, sample_dpmpp_2m, sample_reference
from gsad.diffusion.schedules import Schedule, linear_betas, q_sample, training_schedule

__all__ = [
    "Denoiser",
    "SAMPLERS",
    "Schedule",
    "initial_state",
    "linear_betas",
    "posterior_sample",
    "posterior_step",
    "q_sample",
    "sample_ddim",
    "sample_dpmpp_2m",
    "sample_reference",
    "training_schedule",
]
