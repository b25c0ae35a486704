#!/usr/bin/env bash
# The second default model (src/gsad/resources/default.safetensors since then): the two
# GSAD stages on the broad degradation pipeline (--ranges broad), full-resolution photos with
# multi-scale crops, the soft-exposure start; then its sampler settings, chosen on valbroad3 with
# the detail restoration on, and the copy into the package.
# Usage: bash benchmarks/default_model/train_v2.sh WORK_DIR   (about 3.3 h on one thread of a Zen 5 CPU after v1)
#
# Safe to run again: every run that already exists is continued with --resume (the same data
# order, optimizer and EMA), one that is complete is left alone. One CPU thread by default.
# Starts from the first default model (WORK_DIR/v1_default.safetensors, made by train_v1.sh when
# missing): a stage-2 model has no uncertainty head, so stage 1 takes its U-Net and a fresh head.
set -euo pipefail
work=${1:?usage: train_v2.sh WORK_DIR}
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -d "$work/photos/train_full" ] || [ ! -d "$work/valbroad3" ]; then
    bash "$here/prepare_photos.sh" "$work"
fi
cd "$work"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# A stage-2 run saved in the repository (benchmarks/default_model/v2-progress:
# its newest resumable state, EMA weights, frozen stage-1 model, config and log) is continued from
# there when WORK_DIR has none, so a new machine does not start again from step 0; FROM_SCRATCH=1
# in the environment ignores it and trains everything, the first default model included.
if [ -z "${FROM_SCRATCH:-}" ] && [ ! -d runs/v2-s2 ] && [ -d "$here/v2-progress/v2-s2" ]; then
    mkdir -p runs && cp -r "$here/v2-progress/v2-s2" runs/v2-s2
fi
# Stage 1 starts from the first default model (not needed once stage 2 has a run).
if [ ! -f v1_default.safetensors ] && [ ! -d runs/v2-s2 ]; then
    bash "$here/train_v1.sh" "$work"
fi

# gsad train, continuing RUN_DIR (the last argument pair is --out RUN_DIR) when it exists.
run() {
    local out=${*: -1}
    if compgen -G "$out/checkpoints/step_*.state.pt" > /dev/null; then
        gsad train --resume "$@"
    else
        gsad train "$@"
    fi
}

data=(--data photos/train_full --synthetic --ranges broad --min-scale 0.1 --cache --batch-size 8
      --loss-weighting truncated-snr --ema-decay 0.999 --checkpoint-every 250 --log-every 50
      --val-data valbroad --val-every 500 --val-count 6
      --sampler reference --sampler-steps 3 --beta-start 2e-3 --beta-end 0.7 --sampler-seed 0
      --sampler-start soft-exposure)

# Stage 1 (uncertainty head; the U-Net adapts to the broad pipeline): 1500 steps, 64 px crops.
# Skipped once stage 2 has a saved state (stage 2 keeps its own copy of the stage-1 model).
if ! compgen -G "runs/v2-s2/checkpoints/step_*.state.pt" > /dev/null; then
    run --stage uncertainty --init v1_default.safetensors "${data[@]}" \
        --crop 64 --lr 2e-4 --seed 21 --max-steps 1500 --out runs/v2-s1
fi

# Stage 2 (GSAD losses, warm start from the soft auto-exposure): 8000 steps on 64 px crops,
# then the same run continued to 10500 steps on 128 px crops (global context).
run --stage gsad --init runs/v2-s1 "${data[@]}" --warm-start 0.5 \
    --crop 64 --lr 1e-4 --seed 22 --max-steps 8000 --out runs/v2-s2
gsad train --resume --crop 128 --max-steps 10500 --out runs/v2-s2

# Sampler settings (best mean PSNR on valbroad3, 18 pairs, 256 px centre crops, detail restoration
# on, at most 12 network evaluations per image), written into the model, which becomes the default.
gsad convert runs/v2-s2 default_v2.safetensors --start soft-exposure --detail 1 --overwrite
gsad tune-schedule --checkpoint default_v2.safetensors --data valbroad3 --sampler reference \
    --starts soft-exposure --steps 2,3,4,6 --beta-starts 2e-3 --beta-ends 0.5,0.7,0.85 --ensembles 1,3 \
    --max-evaluations 12 --crop 256
cp default_v2.safetensors "$here/../../src/gsad/resources/default.safetensors"
