"""One distillation step (``gsad train --stage distill``; not the paper): a student that samples in
fewer steps learns the output of a teacher's whole sampler (ensemble included), through its own
differentiable sampler run. It runs both samplers (:mod:`gsad.enhance.trajectories`), so it lives
in the training layer; the distance itself is :func:`gsad.losses.objectives.distill_distance`.
"""

from __future__ import annotations

import torch
from torch import nn

from gsad.config import SamplerConfig
from gsad.diffusion.schedules import Schedule
from gsad.enhance.trajectories import run_ensemble, run_trajectory
from gsad.losses.objectives import distill_distance, full_precision

__all__ = ["distill_objective"]


def distill_objective(
    net: nn.Module,
    teacher: nn.Module,
    low: torch.Tensor,
    high: torch.Tensor,
    student_settings: SamplerConfig,
    teacher_settings: SamplerConfig,
    generator: torch.Generator,
    stride: int,
    loss: str = "l1",
    gt_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss of one distillation step: the student's sampler output against the teacher's.

    1. Target: the teacher's whole sampler output on y = ``low``, with its own settings
       (``teacher_settings``: sampler, steps, betas, warm start, the mean of its ``ensemble``
       trajectories), without gradients; its noise is drawn from ``generator``.
    2. Output: one trajectory of the student's sampler (``student_settings``: K steps, ensemble
       1), from the same warm start and the same noise as the teacher's first trajectory (the
       generator is rewound to its state before step 1), computed differentiably.
    3. L = D(output, target) + gt_weight * mean |output - x0|, D = :func:`~gsad.losses.objectives.distill_distance`.

    Both outputs are the samplers' x0 before detail restoration (``SamplerConfig.detail``), which
    inference applies to either in the same way. With the student equal to the teacher, the
    same sampler and steps and a teacher ensemble of 1, the output is the target and L_distill
    is 0.

    Args:
        net: the student (a U-Net, possibly wrapped, e.g. DistributedDataParallel).
        teacher: the frozen teacher as samplers run it (an
            :class:`~gsad.network.inference_net.InferenceNet`: ``config``, ``precompute``).
        low: y, ``B x 3 x H x W`` in [-1, 1].
        high: x0, same shape, in [-1, 1] (only the ``loss_gt`` term uses it).
        student_settings, teacher_settings: the two samplers' settings (``seed`` unused).
        generator: CPU generator of the step (noise of both sampler runs).
        stride: the student network's stride.
        loss: D, one of :data:`DISTILL_LOSSES`.
        gt_weight: weight of the L1 distance to the ground truth (0: the teacher alone).

    Returns:
        (scalar loss, logs ``{"loss", "loss_distill", "loss_gt"}`` as detached scalars;
        ``loss_gt`` is logged at any weight).
    """
    state = generator.get_state()
    with torch.no_grad():
        target = run_ensemble(teacher, low, teacher_settings, tile=0, generator=generator, device=low.device)
    generator.set_state(state)
    schedule = Schedule.linear(student_settings.steps, student_settings.beta_start, student_settings.beta_end)
    output = run_trajectory(net, low, student_settings, schedule, generator, tile=0, device=low.device,
                            stride=stride)
    with full_precision(low.device):
        output = output.float()
        loss_distill = distill_distance(output, target.float(), loss)
        loss_gt = (output - high.float()).abs().mean()
        total = loss_distill + gt_weight * loss_gt if gt_weight > 0 else loss_distill
    logs = {"loss": total.detach(), "loss_distill": loss_distill.detach(), "loss_gt": loss_gt.detach()}
    return total, logs
