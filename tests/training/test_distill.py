"""The distillation step: the student's sampler output against the teacher's whole sampler."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from gsad.config import SamplerConfig
from gsad.network.inference_net import InferenceNet
from gsad.training.distill import distill_objective


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two 32 x 32 random ground truths in [-1, 1] and their inputs at a tenth of the light."""
    high = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return 0.1 * high - 0.9, high


#: A teacher's sampler: stochastic (reference), warm start, 2 steps.
TEACHER = SamplerConfig(steps=2, beta_start=2e-3, beta_end=0.85, start="soft-exposure", ensemble=1)


def _distill(student, teacher, teacher_settings=TEACHER, steps=2, seed=5, **kwargs):
    low, high = _batch(3)
    student_settings = dataclasses.replace(teacher_settings, steps=steps, ensemble=1)
    return distill_objective(student, InferenceNet(teacher), low, high, student_settings, teacher_settings,
                             torch.Generator().manual_seed(seed), stride=teacher.config.stride, **kwargs)


def test_distill_loss_vanishes_only_for_the_teachers_own_trajectory(tiny_unet_pair):
    """A copy of the teacher with the teacher's steps, noise and one trajectory gives the teacher's output
    (equal up to float rounding: the teacher's noise terms are precomputed for the schedule); fewer
    steps, or an ensemble of trajectories as the target, do not."""
    net, teacher = tiny_unet_pair
    loss, logs = _distill(net, teacher)
    assert logs["loss_distill"] < 1e-5 and logs["loss"] == logs["loss_distill"]
    assert logs["loss_gt"] > 0.1  # logged at weight 0, not added
    fewer = _distill(net, teacher, steps=1)[1]["loss_distill"]
    ensemble = _distill(net, teacher, dataclasses.replace(TEACHER, ensemble=3))[1]["loss_distill"]
    assert fewer > 1e-3 and ensemble > 1e-3
    assert _distill(net, teacher, seed=5)[1]["loss"] == logs["loss"]  # the step's generator decides the noise


def test_distill_gradients_reach_the_student_not_the_teacher(tiny_unet_pair):
    net, _ = tiny_unet_pair
    teacher = copy.deepcopy(net).eval()  # requires grad: only the objective keeps the teacher out of autograd
    student = copy.deepcopy(net)
    torch.manual_seed(1)
    for p in student.parameters():
        p.data.add_(0.01 * torch.randn_like(p))
    loss, logs = _distill(student, teacher, dataclasses.replace(TEACHER, ensemble=2), steps=2, gt_weight=0.5)
    loss.backward()
    assert logs["loss"] == pytest.approx(logs["loss_distill"] + 0.5 * logs["loss_gt"])
    grads = [p.grad for p in student.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in teacher.parameters())
