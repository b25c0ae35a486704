#!/usr/bin/env bash
# Photos for the default model, all available offline from package registries:
#   - training: 20 colour photos from Debian's opencv-doc package (photos/train_ocv, the first
#     stages of the default model) and, in photos/train, those plus 26 photos (nature, landscapes,
#     still lifes) from the mate-backgrounds and lomiri-wallpapers packages, downscaled to 640 px on
#     the long side (the wallpapers are 1280-2560 px: 64 px crops of them would be nearly flat);
#   - validation (schedule tuning, training curves), darkened with the training camera model:
#     valpairs, 2 more opencv-doc photos (the first stages' curves), and val6, those 2 plus 4
#     photos that are in no training set (3 more wallpapers, downscaled to 640 px, and
#     opencv-doc's HappyFish): more draws of the camera, half of them very dark (mean level
#     about 6 of 255), for the sampler defaults and the last stage's curve;
#   - held-out test: scikit-image's 6 colour photos, darkened with a *different* camera model
#     (HOLDOUT_RANGES: darker, noisier, stronger colour casts).
# Second default model, after the above:
#   - photos/train_full: the same 46 training photos at full resolution (the wallpapers are
#     1280-6000 px; training takes multi-scale crops of them, --min-scale);
#   - valbroad: the val6 photos darkened with the broad pipeline (--ranges broad), and valbroad3:
#     the same photos darkened three times (seeds 901-903), where its sampler settings were chosen;
#   - photos/heldout: 10 photos in no training or validation set: scikit-image's 6 and 4 more
#     real photographs cut from fotoxx-common's manual images and tuxmath-data (the rest of the
#     allowed packages gnome-backgrounds, ukui-wallpapers, desktop-base, sway-backgrounds,
#     gcompris-qt-data and imagemagick-6-doc hold renders, abstract art, logos and screenshots,
#     checked by eye on contact sheets); downscaled to 640 px on the long side;
#   - heldout_FAMILY: photos/heldout darkened with each held-out family (dark-noisy, phone-jpeg,
#     color-cast, near-normal); the originals, photos/heldout, are the do-no-harm set.
# Usage: bash benchmarks/default_model/prepare_photos.sh WORK_DIR
set -euo pipefail
work=${1:?usage: prepare_photos.sh WORK_DIR}
mkdir -p "$work" && cd "$work"
if [ ! -d ocv ]; then
    mkdir -p ocv && (cd ocv && apt-get download opencv-doc && dpkg -x opencv-doc_*.deb x)
fi
src=ocv/x/usr/share/doc/opencv-doc/examples/data
mkdir -p photos/train photos/train_ocv photos/val
for n in aero1.jpg aero3.jpg aloeL.jpg apple.jpg baboon.jpg board.jpg building.jpg butterfly.jpg \
         fruits.jpg graf1.png left.jpg licenseplate_motion.jpg messi5.jpg orange.jpg rubberwhale1.png \
         smarties.png squirrel_cls.jpg stuff.jpg ela_original.jpg sudoku.png; do
    cp "$src/$n" photos/train/ && cp "$src/$n" photos/train_ocv/
done
if [ ! -d walls/x ]; then
    mkdir -p walls && (cd walls && apt-get download mate-backgrounds lomiri-wallpapers-16.04 \
        lomiri-wallpapers-20.04 && for f in *.deb; do dpkg -x "$f" x; done)
fi
cp "$src/leuvenA.jpg" "$src/home.jpg" photos/val/
mkdir -p photos/val6 && cp photos/val/* photos/val6/
python3 - "$src" <<'PY'
import sys
from pathlib import Path
from PIL import Image

def shrink(source, target):
    """Decode to RGB, downscale to 640 px on the long side (Lanczos), save as PNG."""
    image = Image.open(source).convert("RGB")
    image.thumbnail((640, 640), Image.LANCZOS)
    image.save(target)

mate = [f"x/usr/share/backgrounds/mate/nature/{n}.jpg" for n in (
    "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
    "TwoWings", "Wood", "YellowFlower")]
lomiri = [f"x/usr/share/backgrounds/{n}.jpg" for n in (
    "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
    "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "free_by_Peter_Nerlich",
    "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich", "life_by_Aitzol_Berasategi",
    "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi",
    "Kleiber_by_Lukas_Baubkus")]
for name in mate + lomiri:
    shrink(Path("walls") / name, Path("photos/train") / ("wall_" + Path(name).stem + ".png"))
for name in ("Fossa_by_Jasper_Roks", "umang_by_Abhishek_Mudgal", "Infinite-Sea_by_Aury88"):
    shrink(f"walls/x/usr/share/backgrounds/{name}.jpg", f"photos/val6/wall_{name}.png")
Image.open(f"{sys.argv[1]}/HappyFish.jpg").convert("RGB").save("photos/val6/HappyFish.png")
PY
gsad synthesize photos/val -o valpairs --seed 1 --overwrite
gsad synthesize photos/val6 -o val6 --seed 11 --overwrite
gsad synthesize --bundled -o holdout --ranges holdout --seed 7 --overwrite

# ---- Second default model ----
mkdir -p photos/train_full
for f in photos/train_ocv/*; do cp "$src/$(basename "$f")" photos/train_full/; done
if [ ! -d more/x ]; then
    mkdir -p more && (cd more && apt-get download fotoxx-common tuxmath-data && for f in *.deb; do dpkg -x "$f" x; done)
fi
mkdir -p photos/heldout
python3 - <<'PY'
from pathlib import Path
from PIL import Image
import skimage.data

mate = ["Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
        "TwoWings", "Wood", "YellowFlower"]
lomiri = ["Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
          "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "free_by_Peter_Nerlich",
          "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich", "life_by_Aitzol_Berasategi",
          "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi",
          "Kleiber_by_Lukas_Baubkus"]
for name in [f"mate/nature/{n}" for n in mate] + lomiri:
    # Full resolution, decoded once to PNG (lossless from here on).
    Image.open(f"walls/x/usr/share/backgrounds/{name}.jpg").convert("RGB").save(
        f"photos/train_full/wall_{Path(name).name}.png")

def heldout(source, target, box=None):
    image = Image.open(source).convert("RGB")
    if box is not None:
        image = image.crop(box)
    image.thumbnail((640, 640), Image.LANCZOS)
    image.save(f"photos/heldout/{target}.png")

folder = Path(skimage.data.__file__).parent
for name in ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "motorcycle_right.png",
             "rocket.jpg"):
    heldout(folder / name, Path(name).stem)
fotoxx = "more/x/usr/share/fotoxx/images"
heldout(f"{fotoxx}/emboss2.jpg", "fotoxx_building")
heldout(f"{fotoxx}/flatten2.jpg", "fotoxx_river", (0, 224, 372, 442))  # the lower (plain) of two views
heldout(f"{fotoxx}/unbend2.jpg", "fotoxx_room", (60, 60, 540, 260))  # inside the panorama's black border
heldout("more/x/usr/share/tuxmath/images/title/menu_bkg.jpg", "tuxmath_earth")
PY
gsad synthesize photos/val6 -o valbroad --ranges broad --seed 11 --overwrite
# valbroad3: the val6 photos darkened three times with the broad pipeline (seeds 901-903; names
# NAME_1..NAME_3): 18 pairs, where the second default model's sampler settings were chosen.
for s in 1 2 3; do
    gsad synthesize photos/val6 -o "tmp_valbroad_$s" --ranges broad --seed $((900 + s)) --overwrite
    mkdir -p valbroad3/low valbroad3/high
    for f in "tmp_valbroad_$s"/low/*.png; do
        name=$(basename "$f" .png)
        cp "$f" "valbroad3/low/${name}_$s.png"
        cp "tmp_valbroad_$s/high/$name.png" "valbroad3/high/${name}_$s.png"
    done
    rm -r "tmp_valbroad_$s"
done
for family in dark-noisy phone-jpeg color-cast near-normal; do
    gsad synthesize photos/heldout -o "heldout_$family" --ranges "$family" --seed 7 --overwrite
done
