#!/usr/bin/env bash
# How the bundled default model (src/gsad/resources/default.safetensors) was made, start to end.
# Usage: bash benchmarks/default_model/train.sh WORK_DIR     (CPU; about 2.5 h on 2 cores)
#
# Each stage below ran to the --max-steps given here (some runs were started with a larger
# --max-steps and stopped at this checkpoint; the data order and the weights do not depend on
# --max-steps, so this script gives the same checkpoints). The learning rate is constant.
set -euo pipefail
work=${1:?usage: train.sh WORK_DIR}
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/prepare_photos.sh" "$work"
cd "$work"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

# Stage 1 (uncertainty), part a: the paper's eps loss, small preset, synthetic pairs made on the fly
# from the 20 opencv-doc photos; 2000 steps (about 43 min with one thread).
gsad train --stage uncertainty --data photos/train_ocv --synthetic --preset small \
  --max-steps 2000 --batch-size 8 --crop 64 --lr 2e-4 --ema-decay 0.999 --ema-start 500 --seed 0 \
  --checkpoint-every 250 --log-every 50 --val-data valpairs --val-every 1000 --val-count 2 \
  --sampler ddim --sampler-steps 8 --beta-start 2e-3 --beta-end 0.9 --sampler-seed 0 \
  --out runs/default-s1

# Part b: from a, truncated-SNR weighting (the x0 error counts at high noise levels); 1000 steps.
gsad train --stage uncertainty --init runs/default-s1 --data photos/train_ocv --synthetic \
  --loss-weighting truncated-snr \
  --max-steps 1000 --batch-size 8 --crop 64 --lr 2e-4 --ema-decay 0.999 --seed 2 \
  --checkpoint-every 250 --log-every 50 --val-data valpairs --val-every 500 --val-count 2 \
  --sampler reference --sampler-steps 4 --beta-start 2e-3 --beta-end 0.9 --sampler-seed 0 \
  --out runs/v2-s1

# Part c: from b, all 46 training photos (opencv-doc + wallpapers); 3000 steps (about 45 min).
gsad train --stage uncertainty --init runs/v2-s1 --data photos/train --synthetic \
  --loss-weighting truncated-snr \
  --max-steps 3000 --batch-size 8 --crop 64 --lr 2e-4 --ema-decay 0.999 --seed 4 \
  --checkpoint-every 250 --log-every 50 --val-data valpairs --val-every 500 --val-count 2 \
  --sampler reference --sampler-steps 4 --beta-start 2e-3 --beta-end 0.9 --sampler-seed 0 \
  --out runs/v3-s1

# Stage 2 (GSAD): uncertainty-guided pixel loss + global structure-aware loss, from stage 1.
gsad train --stage gsad --init runs/v3-s1 --data photos/train --synthetic \
  --loss-weighting truncated-snr \
  --max-steps 1000 --batch-size 8 --crop 64 --lr 1e-4 --ema-decay 0.999 --seed 3 \
  --checkpoint-every 100 --log-every 50 --val-data valpairs --val-every 250 --val-count 2 \
  --sampler ddim --sampler-steps 3 --beta-start 2e-3 --beta-end 0.5 --sampler-seed 0 --sampler-start exposure \
  --out runs/v3-s2

# Sampler defaults chosen on the validation pairs, written into the checkpoint.
gsad convert runs/v3-s2 default.safetensors --overwrite
# DDIM for comparison (best 23.84 dB), then the reference sampler, whose winner (23.90 dB: 2 steps,
# beta 2e-3 -> 0.3, start exposure) is written into the checkpoint.
gsad tune-schedule --checkpoint default.safetensors --data valpairs --dry-run --sampler ddim --starts exposure \
  --steps 2,3,4 --beta-starts 2e-3 --beta-ends 0.3,0.5,0.7,0.9
gsad tune-schedule --checkpoint default.safetensors --data valpairs --sampler reference --starts exposure,noise \
  --steps 2,3,4 --beta-starts 2e-3 --beta-ends 0.3,0.5,0.7,0.9
cp default.safetensors "$here/../../src/gsad/resources/default.safetensors"
