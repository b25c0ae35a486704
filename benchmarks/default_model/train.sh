#!/usr/bin/env bash
# How the bundled default model (src/gsad/resources/default.safetensors) was made, start to end.
# Usage: bash benchmarks/default_model/train.sh WORK_DIR     (CPU; about 1.5 h on 2 cores)
set -euo pipefail
work=${1:?usage: train.sh WORK_DIR}
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/prepare_photos.sh" "$work"
cd "$work"
export OMP_NUM_THREADS=1   # one thread per process: faster than two on a shared 2-core machine

# Stage 1 (uncertainty): small preset, synthetic pairs made on the fly from photos/train.
# (The run was planned for 3000 steps and stopped at its step-2000 checkpoint to fit the session.)
gsad train --stage uncertainty --data photos/train --synthetic --preset small \
  --max-steps 2000 --batch-size 8 --crop 64 --lr 2e-4 --ema-decay 0.999 --ema-start 500 --seed 0 \
  --checkpoint-every 250 --log-every 50 --val-data valpairs --val-every 1000 --val-count 2 \
  --sampler ddim --sampler-steps 8 --beta-start 2e-3 --beta-end 0.9 --sampler-seed 0 \
  --out runs/default-s1

# Stage 2 (GSAD): uncertainty-guided pixel loss + global structure-aware loss, from stage 1.
gsad train --stage gsad --init runs/default-s1 --data photos/train --synthetic \
  --max-steps 600 --batch-size 8 --crop 64 --lr 1e-4 --ema-decay 0.999 --seed 1 \
  --checkpoint-every 100 --log-every 50 --val-data valpairs --val-every 300 --val-count 2 \
  --sampler ddim --sampler-steps 8 --beta-start 2e-3 --beta-end 0.9 --sampler-seed 0 \
  --out runs/default-s2

# Sampler defaults chosen on the validation pairs, written into the checkpoint.
gsad convert runs/default-s2 default.safetensors --overwrite
gsad tune-schedule --checkpoint default.safetensors --data valpairs --crop 256 \
  --sampler ddim --steps 4,8 --beta-starts 1e-4,2e-3 --beta-ends 0.5,0.7,0.9
cp default.safetensors "$here/../../src/gsad/resources/default.safetensors"
