"""Make src/gsad/resources/sample_dark.png: scikit-image's coffee photo (CC0), resized to
384 x 256 and darkened with the held-out camera model (gsad.data.synthesize.HOLDOUT_RANGES).

    python benchmarks/default_model/make_sample.py
"""

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from gsad.data.synthesize import HOLDOUT_RANGES, degrade
from gsad.images import write_image

photo = np.asarray(Image.fromarray(data.coffee()).resize((384, 256), Image.LANCZOS))
low, params = degrade(photo, np.random.default_rng(2026), HOLDOUT_RANGES)
out = Path(__file__).resolve().parents[2] / "src" / "gsad" / "resources" / "sample_dark.png"
write_image(out, low, overwrite=True)
print(out, "mean level", round(float(low.mean()), 1), params)
