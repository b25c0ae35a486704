"""Make the bundled dark photos from scikit-image's photos, darkened with the held-out camera
model (gsad.data.synthesize.HOLDOUT_RANGES) so that they look like real dark shots:

- src/gsad/resources/sample_dark.png: the coffee photo (CC0), 384 x 256;
- src/gsad/resources/examples/*.png: the demo's examples (``gsad demo``), longer side 384 px:
  chelsea (CC0, Stefan van der Walt), astronaut (NASA, public domain) and rocket (SpaceX,
  public domain).

    python benchmarks/default_model/make_sample.py
"""

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from gsad.data.synthesize import HOLDOUT_RANGES, degrade
from gsad.imaging.io import write_image

RESOURCES = Path(__file__).resolve().parents[2] / "src" / "gsad" / "resources"
LONG_SIDE = 384
# (photo, output path, seed of the camera draw and noise)
PHOTOS = (
    (data.coffee, RESOURCES / "sample_dark.png", 2026),
    (data.chelsea, RESOURCES / "examples" / "cat_dark.png", 1),
    (data.astronaut, RESOURCES / "examples" / "astronaut_dark.png", 2),
    (data.rocket, RESOURCES / "examples" / "rocket_dark.png", 3),
)

for load, out, seed in PHOTOS:
    photo = Image.fromarray(load())
    scale = LONG_SIDE / max(photo.size)
    photo = np.asarray(photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.LANCZOS))
    low, params = degrade(photo, np.random.default_rng(seed), HOLDOUT_RANGES)
    write_image(out, low, overwrite=True)
    print(out, low.shape[1], "x", low.shape[0], "mean level", round(float(low.mean()), 1), params)
