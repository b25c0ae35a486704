"""Mean level of enhanced images over their references', per photo: how far a model's global
brightness (and, per channel, its colour) is off, beside the GT-mean figures that hide it.

Reads the pairs of a ``low/`` + ``high/`` dataset (e.g. WORK/valbroad3, whose files are named
PHOTO_DRAW) and one or more folders of outputs named as the low images (``gsad evaluate
--checkpoint C --outputs DIR``), and prints, for each photo and each folder, the ratio of mean grey
levels (gsad.evaluation.metrics.mean_level; 1 is right, below 1 too dark) as its mean and range
over the photo's draws, and the largest per-channel ratio (R, G, B means) of any draw.

    python benchmarks/default_model/level_ratios.py DATA LABEL=OUTPUTS_DIR [LABEL=OUTPUTS_DIR ...]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from gsad.data.layouts import find_pairs
from gsad.evaluation.metrics import mean_level
from gsad.imaging.io import read_image


def channel_means(image: np.ndarray) -> np.ndarray:
    """Mean of each of the R, G, B channels (0-255) of an ``H x W x 3`` uint8 image."""
    return image.reshape(-1, 3).mean(axis=0, dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="low/ + high/ pairs, files named PHOTO_DRAW")
    parser.add_argument("outputs", nargs="+", help="LABEL=DIR: a folder of outputs named as the low images")
    args = parser.parse_args()
    folders = dict(spec.split("=", 1) for spec in args.outputs)
    ratios = defaultdict(lambda: defaultdict(list))   # photo -> label -> [grey ratio per draw]
    worst = defaultdict(lambda: defaultdict(float))   # photo -> label -> largest channel ratio
    references = {}
    for pair in find_pairs(args.data, "pairs"):
        photo = pair.name.rsplit("_", 1)[0]
        reference = read_image(pair.high)
        references[photo] = mean_level(reference) / 255.0
        for label, folder in folders.items():
            out = read_image(Path(folder) / f"{pair.name}.png")
            ratios[photo][label].append(mean_level(out) / mean_level(reference))
            channels = channel_means(out) / channel_means(reference)
            worst[photo][label] = max(worst[photo][label], float(channels.max()))
    print("| photo (reference's mean level) | " + " | ".join(folders) + " |")
    print("|---" * (len(folders) + 1) + "|")
    for photo, per_label in ratios.items():
        cells = [f"{np.mean(r):.2f} ({min(r):.2f}-{max(r):.2f}), channel max {worst[photo][label]:.2f}"
                 for label, r in per_label.items()]
        print(f"| {photo} ({references[photo]:.2f}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
