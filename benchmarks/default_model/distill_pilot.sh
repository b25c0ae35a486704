#!/usr/bin/env bash
# A pilot of distillation on the shipped model: a one-step student (1 network evaluation per image)
# regressed on the bundled model's whole sampler output (3 steps x 3 trajectories: 9 evaluations),
# starting as a copy of it, on the broad synthetic degradations of the training photos. It answers
# whether a 1-step student keeps the teacher's quality before the third model's teacher is ready.
# Usage: bash benchmarks/default_model/distill_pilot.sh WORK_DIR   (one CPU thread by default;
# WORK_DIR as for train_v3.sh: photos/train_full and valbroad, made by prepare_photos.sh)
# DISTILL_K=2 trains a two-step student instead (lr DISTILL_LR, default 3e-5 for one step and 1e-4
# for two; run folder runs/distill-pilot for one step, runs/distill-k2 for two); DISTILL_EMA sets
# the EMA decay (default 0.999; 0.99 suits a run of a few hundred steps).
# Resumable: a run in its run folder is continued with --resume.
set -euo pipefail
work=${1:?usage: distill_pilot.sh WORK_DIR}
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -d "$work/photos/train_full" ] || [ ! -d "$work/valbroad" ]; then
    bash "$here/prepare_photos.sh" "$work"
fi
cd "$work"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
steps=${DISTILL_STEPS:-4000}
k=${DISTILL_K:-1}
if [ "$k" = 1 ]; then out=runs/distill-pilot; lr=${DISTILL_LR:-3e-5}; else out=runs/distill-k$k; lr=${DISTILL_LR:-1e-4}; fi
if compgen -G "$out/checkpoints/step_*.state.pt" > /dev/null; then
    gsad train --resume --out "$out" --max-steps "$steps"
else
    gsad train --stage distill --teacher default --student-steps "$k" \
        --data photos/train_full --synthetic --ranges broad --min-scale 0.1 --cache --batch-size 4 \
        --crop 64 --lr "$lr" --ema-decay "${DISTILL_EMA:-0.999}" --seed 41 --max-steps "$steps" \
        --checkpoint-every 250 --log-every 50 --val-data valbroad --val-every 1000 --val-count 6 \
        --out "$out"
fi
