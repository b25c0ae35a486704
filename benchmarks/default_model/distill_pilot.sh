#!/usr/bin/env bash
# A pilot of distillation on the shipped model: a one-step student (1 network evaluation per image)
# regressed on the bundled model's whole sampler output (3 steps x 3 trajectories: 9 evaluations),
# starting as a copy of it, on the broad synthetic degradations of the training photos. It answers
# whether a 1-step student keeps the teacher's quality before the third model's teacher is ready.
# Usage: bash benchmarks/default_model/distill_pilot.sh WORK_DIR   (one CPU thread by default;
# WORK_DIR as for train_v3.sh: photos/train_full and valbroad, made by prepare_photos.sh)
# Resumable: a run in WORK_DIR/runs/distill-pilot is continued with --resume.
set -euo pipefail
work=${1:?usage: distill_pilot.sh WORK_DIR}
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -d "$work/photos/train_full" ] || [ ! -d "$work/valbroad" ]; then
    bash "$here/prepare_photos.sh" "$work"
fi
cd "$work"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
steps=${DISTILL_STEPS:-4000}
if compgen -G "runs/distill-pilot/checkpoints/step_*.state.pt" > /dev/null; then
    gsad train --resume --out runs/distill-pilot --max-steps "$steps"
else
    gsad train --stage distill --teacher default --student-steps 1 \
        --data photos/train_full --synthetic --ranges broad --min-scale 0.1 --cache --batch-size 4 \
        --crop 64 --lr 3e-5 --ema-decay 0.999 --seed 41 --max-steps "$steps" \
        --checkpoint-every 250 --log-every 50 --val-data valbroad --val-every 1000 --val-count 6 \
        --out runs/distill-pilot
fi
