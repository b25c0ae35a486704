#!/usr/bin/env bash
# Third default model, in training (not the default yet): a wider U-Net (base 48 channels, about
# 2.25x the compute of the shipped small preset) on the broad degradation pipeline, stage 1 first.
# Usage: bash benchmarks/default_model/train_v3.sh WORK_DIR   (one CPU thread by default)
#
# Resumable: a run in WORK_DIR is continued with --resume (same data order, optimizer and EMA).
# On a new machine, where WORK_DIR has no run, stage 1 starts from the newest weights saved in the
# repository (benchmarks/default_model/v3-progress/v3-s1.safetensors: EMA weights only, no
# optimizer state; Adam restarts from them with a new seed, 33 for the step-2000 snapshot) when they
# exist, else from scratch.
set -euo pipefail
work=${1:?usage: train_v3.sh WORK_DIR}
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -d "$work/photos/train_full" ] || [ ! -d "$work/valbroad" ]; then
    bash "$here/prepare_photos.sh" "$work"
fi
cd "$work"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
steps=${V3_S1_STEPS:-4000}
data=(--data photos/train_full --synthetic --ranges broad --min-scale 0.1 --cache --batch-size 8
      --loss-weighting truncated-snr --ema-decay 0.999 --checkpoint-every 250 --log-every 50
      --val-data valbroad --val-every 1000 --val-count 6
      --sampler reference --sampler-steps 3 --sampler-beta-start 2e-3 --sampler-beta-end 0.7 --sampler-seed 0
      --sampler-start soft-exposure)
snapshot="$here/v3-progress/v3-s1.safetensors"
if compgen -G "runs/v3-s1/checkpoints/step_*.state.pt" > /dev/null; then
    gsad train --resume --out runs/v3-s1 --max-steps "$steps"
elif [ -f "$snapshot" ]; then
    gsad train --stage uncertainty --init "$snapshot" "${data[@]}" \
        --crop 64 --lr 2e-4 --seed 33 --max-steps "$steps" --out runs/v3-s1
else
    gsad train --config "$here/v3_network.yaml" --stage uncertainty "${data[@]}" \
        --crop 64 --lr 2e-4 --seed 31 --max-steps "$steps" --out runs/v3-s1
fi
