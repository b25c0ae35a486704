#!/usr/bin/env bash
# How the bundled default model (src/gsad/resources/default.safetensors) was made, start to end:
# the first default model (train_v1.sh, about 5.9 h on 2 cores), then the second, which is the
# default since then (train_v2.sh, about 3 h on one thread: the broad degradation pipeline,
# full-resolution photos, the soft-exposure start, its sampler settings with detail restoration).
# Usage: bash benchmarks/default_model/train.sh WORK_DIR
#
# train_v2.sh continues the stage-2 state saved in benchmarks/default_model/v2-progress when WORK_DIR
# has no run of its own, so on a new machine this script skips the first model and stage 1;
# FROM_SCRATCH=1 bash benchmarks/default_model/train.sh WORK_DIR redoes everything.
set -euo pipefail
work=${1:?usage: train.sh WORK_DIR}
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/train_v2.sh" "$work"
