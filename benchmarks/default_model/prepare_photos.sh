#!/usr/bin/env bash
# Photos for the default model, all available offline from package registries:
#   - training: 20 colour photos from Debian's opencv-doc package;
#   - validation (schedule tuning, training curves): 2 more opencv-doc photos, darkened with the
#     training camera model;
#   - held-out test: scikit-image's 6 colour photos, darkened with a *different* camera model
#     (HOLDOUT_RANGES: darker, noisier, stronger colour casts).
# Usage: bash benchmarks/default_model/prepare_photos.sh WORK_DIR
set -euo pipefail
work=${1:?usage: prepare_photos.sh WORK_DIR}
mkdir -p "$work" && cd "$work"
if [ ! -d ocv ]; then
    mkdir -p ocv && (cd ocv && apt-get download opencv-doc && dpkg -x opencv-doc_*.deb x)
fi
src=ocv/x/usr/share/doc/opencv-doc/examples/data
mkdir -p photos/train photos/val
for n in aero1.jpg aero3.jpg aloeL.jpg apple.jpg baboon.jpg board.jpg building.jpg butterfly.jpg \
         fruits.jpg graf1.png left.jpg licenseplate_motion.jpg messi5.jpg orange.jpg rubberwhale1.png \
         smarties.png squirrel_cls.jpg stuff.jpg ela_original.jpg sudoku.png; do
    cp "$src/$n" photos/train/
done
cp "$src/leuvenA.jpg" "$src/home.jpg" photos/val/
gsad synthesize photos/val -o valpairs --seed 1 --overwrite
gsad synthesize --bundled -o holdout --ranges holdout --seed 7 --overwrite
