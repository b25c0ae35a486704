#!/usr/bin/env bash
# Third default model (a candidate, not the default): a wider U-Net (base 48 channels, about
# 2.25x the compute of the shipped small preset) on the broad degradation pipeline: stage 1
# (uncertainty, 4000 steps), then stage 2 (gsad, 8000 steps on 64 px crops, continued to 10500 on
# 128 px crops as for the second model), then its sampler settings tuned on the validation pairs
# and written to WORK/v3_default.safetensors (the candidate; the bundled model is not replaced).
# The committed weights (v3-progress/) hold 12500 stage-2 steps: 2000 more on 128 px crops,
# trained under bf16 autocast (V3_AMP=bf16 V3_S2_LONG_STEPS=14000, stopped at step 12500).
# Usage: bash benchmarks/default_model/train_v3.sh WORK_DIR   (one CPU thread by default)
#   V3_AMP=bf16 trains under bf16 autocast, only on a CPU with native bf16 (avx512_bf16 or AMX:
#   1.69-1.75x the steps per second of fp32 on a Zen 4; elsewhere many times slower); a --resume
#   keeps its run's.
#
# Resumable: a run in WORK_DIR is continued with --resume (same data order, optimizer and EMA).
# On a new machine, where WORK_DIR has no run, it starts from the newest weights saved in the
# repository (benchmarks/default_model/v3-progress/: EMA weights only, no optimizer state):
# v3-s2.safetensors, the EMA weights after the number of stage-2 steps written in v3-s2.steps, is
# converted and tuned without training when that number reaches the last step (10500, or
# V3_S2_LONG_STEPS), else stage 2 goes on from it (Adam restarts from the weights with seed 34 +
# that number, and the run does the steps that remain); without it, stage 2 starts from
# v3-s1-done.safetensors (stage 1 complete), else stage 1 goes on from v3-s1.safetensors (part
# way; Adam restarts from them with a new seed, 33 for the step-2000 snapshot), else from scratch.
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
      --sampler-start soft-exposure --amp "${V3_AMP:-off}")
snapshot="$here/v3-progress/v3-s1.safetensors"      # stage 1 part way (EMA weights)
finished="$here/v3-progress/v3-s1-done.safetensors"  # stage 1 complete (EMA weights)
last=runs/v3-s1/checkpoints/step_$(printf %07d "$steps").safetensors
if [ -f "$last" ]; then
    s1=$last                      # this machine's stage 1 is complete
elif [ -f "$finished" ] && [ ! -d runs/v3-s1 ]; then
    s1=$finished                  # a new machine: stage 2 starts from the committed stage-1 model
else
    if compgen -G "runs/v3-s1/checkpoints/step_*.state.pt" > /dev/null; then
        gsad train --resume --out runs/v3-s1 --max-steps "$steps"
    elif [ -f "$snapshot" ]; then
        gsad train --stage uncertainty --init "$snapshot" "${data[@]}" \
            --crop 64 --lr 2e-4 --seed 33 --max-steps "$steps" --out runs/v3-s1
    else
        gsad train --config "$here/v3_network.yaml" --stage uncertainty "${data[@]}" \
            --crop 64 --lr 2e-4 --seed 31 --max-steps "$steps" --out runs/v3-s1
    fi
    s1=$last
fi

# Stage 2 (the paper's GSAD stage: uncertainty-guided pixel loss and the rank-informed structure
# loss), warm-start training as for the second model: 8000 steps on 64 px crops, then the same run
# continued on 128 px crops (global context: 4x the pixels, and the cost, per step) to 10500.
# Steps are counted from the start of stage 2; a run begun from a committed stage-2 snapshot
# records in runs/v3-s2.offset how many steps the snapshot had done, and its own --max-steps are
# the steps that remain.
short=${V3_S2_STEPS:-8000}
long=${V3_S2_LONG_STEPS:-10500}
s2_snapshot="$here/v3-progress/v3-s2.safetensors"
s2_snapshot_steps=$(cat "$here/v3-progress/v3-s2.steps" 2>/dev/null || echo 0)
trained=runs/v3-s2
if [ ! -d runs/v3-s2 ] && [ -f "$s2_snapshot" ] && [ "$s2_snapshot_steps" -ge "$long" ]; then
    trained=$s2_snapshot          # stage 2 is complete in the repository: nothing to train
elif compgen -G "runs/v3-s2/checkpoints/step_*.state.pt" > /dev/null; then
    offset=$(cat runs/v3-s2.offset 2>/dev/null || echo 0)
    if [ "$offset" -lt "$short" ]; then
        gsad train --resume --out runs/v3-s2 --max-steps $((short - offset))
    fi
else
    if [ -f "$s2_snapshot" ] && [ ! -d runs/v3-s2 ]; then
        offset=$s2_snapshot_steps
        init=(--init "$s2_snapshot" --uncertainty "$s1")  # P still comes from the stage-1 model
    else
        offset=0
        init=(--init "$s1")
    fi
    mkdir -p runs && echo "$offset" > runs/v3-s2.offset
    if [ "$offset" -lt "$short" ]; then
        gsad train --stage gsad "${init[@]}" "${data[@]}" --warm-start 0.5 --crop 64 --lr 1e-4 \
            --seed $((34 + offset)) --max-steps $((short - offset)) --out runs/v3-s2
    else
        gsad train --stage gsad "${init[@]}" "${data[@]}" --warm-start 0.5 --crop 128 --lr 1e-4 \
            --seed $((34 + offset)) --max-steps $((long - offset)) --out runs/v3-s2
    fi
fi
if [ "$trained" = runs/v3-s2 ]; then
    gsad train --resume --crop 128 --max-steps $((long - offset)) --out runs/v3-s2
fi

# Sampler settings: best mean PSNR on valbroad3 (18 pairs, 256 px centre crops, detail restoration
# on) with one trajectory of 2 or 3 steps. Three evaluations of this network took 0.55x the time
# of the bundled model's nine on the same pairs (docs/results.md); the whole gsad enhance of the
# sample must stay within 5 s on 2 cores without bf16, which leaves no room for a fourth.
gsad convert "$trained" v3_default.safetensors --start soft-exposure --detail 1 --overwrite
gsad tune-schedule --checkpoint v3_default.safetensors --data valbroad3 --sampler reference \
    --starts soft-exposure --steps 2,3 --beta-starts 2e-3 --beta-ends 0.5,0.7,0.85 --ensembles 1 \
    --crop 256
