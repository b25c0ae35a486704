"""Train the learned-exposure network (gsad.network.exposure_net) and write its shipped weights.

    OMP_NUM_THREADS=1 python benchmarks/default_model/train_exposure.py WORK \
        [--out src/gsad/resources/exposure.safetensors]

WORK is the work folder of prepare_photos.sh. Only its training photos (WORK/photos/train_full, 46
photos) and validation set (WORK/valbroad: 6 pairs, and their 6 originals) are read; the held-out
sets are not.

Recipe (seeded: two runs give bit-identical weights; on one thread of a Zen 3 core 2.6 min of CPU, 4-8.4 min
wall while other jobs shared the CPU):

- each training photo is downscaled to 512 px on the long side; from it, ``DRAWS`` samples, each a
  random crop (each side 40-100 % of the photo's) resized to 128 x 128, then
    - 20 %: the clean crop as input and target (well-exposed photos must come back as they are),
    - 10 %: a dim crop as input and target: the clean crop scaled in linear light so its mean
      luminance is 0.08-0.14 (a dusk scene that is meant to be dim; brighter crops only),
    - 70 %: the crop darkened by the broad training pipeline (gsad.data.synthesize, ``broad``
      ranges: exposure 0.005-1, noise, casts, tone curves, blur, JPEG) as input, the clean crop as
      target;
- the loss, on 64 x 64 area thumbnails of input and target: mean |correct(input) - target| in sRGB
  plus ``LEVEL_WEIGHT`` times the absolute difference of their mean levels;
- Adam, lr 3e-3 with a cosine decay, batch 64 (one random flip or transpose per batch; the
  network's 8-view average is left out in training), ``EPOCHS`` epochs; kept: the epoch with the lowest
  validation loss, on valbroad's 6 pairs, 6 more broad draws of each of its originals and the
  originals themselves (identity).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gsad.data.synthesize import BROAD_RANGES, degrade
from gsad.files import write_bytes, write_output
from gsad.imaging.exposure import LUMINANCE, linear_to_srgb, srgb_to_linear
from gsad.imaging.io import list_images, read_image
from gsad.network.exposure_net import ExposureNet, thumbnail

SEED = 0
DRAWS = 48
CROP = 128
EPOCHS = 15
BATCH = 64
LR = 3e-3
LEVEL_WEIGHT = 0.5
#: Shares of the clean (identity) and the dim (identity) samples; the rest are darkened pairs.
CLEAN_SHARE, DIM_SHARE = 0.2, 0.1


def shrink(image: np.ndarray, side: int = 512) -> np.ndarray:
    """Downscale to ``side`` px on the long side (Lanczos); smaller images stay as they are."""
    picture = Image.fromarray(image)
    picture.thumbnail((side, side), Image.LANCZOS)
    return np.asarray(picture)


def random_crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A crop of 40-100 % of each side, at a random place, resized to ``CROP`` x ``CROP``."""
    h, w = image.shape[:2]
    ch, cw = int(h * rng.uniform(0.4, 1.0)), int(w * rng.uniform(0.4, 1.0))
    top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    crop = Image.fromarray(image[top:top + ch, left:left + cw])
    return np.asarray(crop.resize((CROP, CROP), Image.BILINEAR))


def dim(image: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """``image`` scaled in linear light to a mean luminance of 0.08-0.14 (None if it is darker already)."""
    linear = srgb_to_linear(image / 255.0)
    luminance = float((linear @ LUMINANCE).mean())
    target = rng.uniform(0.08, 0.14)
    if luminance <= target:
        return None
    return np.round(linear_to_srgb(linear * (target / luminance)) * 255).astype(np.uint8)


def to_thumbnail(image: np.ndarray) -> torch.Tensor:
    """uint8 ``H x W x 3`` -> ``3 x 64 x 64`` area thumbnail in [-1, 1]."""
    x = torch.tensor(image).permute(2, 0, 1).float()[None] / 127.5 - 1
    return thumbnail(x)[0]


def sample(photo: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One (input, target) pair from a photo (module docstring)."""
    clean = random_crop(photo, rng)
    kind = rng.uniform()
    if kind < CLEAN_SHARE:
        return clean, clean
    if kind < CLEAN_SHARE + DIM_SHARE:
        dimmed = dim(clean, rng)
        if dimmed is not None:
            return dimmed, dimmed
    return degrade(clean, rng, BROAD_RANGES)[0], clean


def pool(photos: list[np.ndarray], draws: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``draws`` samples of each photo, each from its own generator ``[seed, photo, draw]``, as thumbnails."""
    lows, highs = [], []
    for p, photo in enumerate(photos):
        for d in range(draws):
            low, high = sample(photo, np.random.default_rng([seed, p, d]))
            lows.append(to_thumbnail(low))
            highs.append(to_thumbnail(high))
    return torch.stack(lows), torch.stack(highs)


def validation_set(work: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """valbroad's pairs, 6 broad draws of each original (128 px crops, seed 1000) and the originals
    themselves (identity), as thumbnails."""
    lows = [read_image(p) for p in list_images(work / "valbroad" / "low")]
    highs = [read_image(p) for p in list_images(work / "valbroad" / "high")]
    extra_low, extra_high = pool([shrink(h) for h in highs], 6, 1000)
    low = torch.cat([torch.stack([to_thumbnail(x) for x in lows + highs]), extra_low])
    high = torch.cat([torch.stack([to_thumbnail(x) for x in highs + highs]), extra_high])
    return low, high


def loss_of(net: ExposureNet, low: torch.Tensor, high: torch.Tensor, symmetric: bool = True) -> torch.Tensor:
    """Mean L1 in sRGB [0, 1] of the corrected input thumbnails, plus the mean-level term."""
    out = net(low, symmetric).apply((low + 1) / 2)
    target = (high + 1) / 2
    level = (out.mean(dim=(1, 2, 3)) - target.mean(dim=(1, 2, 3))).abs().mean()
    return (out - target).abs().mean() + LEVEL_WEIGHT * level


def train(train_set, val_set) -> tuple[dict, list[tuple[int, float, float]]]:
    """Train from seed ``SEED``; the best epoch's weights and each epoch's (epoch, train, val) loss."""
    torch.manual_seed(SEED)
    net = ExposureNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    low, high = train_set
    steps = EPOCHS * math.ceil(len(low) / BATCH)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    order = torch.Generator().manual_seed(SEED)
    best, log = (float("inf"), None), []
    for epoch in range(EPOCHS):
        net.train()
        total = 0.0
        for batch in torch.randperm(len(low), generator=order).split(BATCH):
            view = int(torch.randint(8, (), generator=order))  # a random flip or transpose of the batch
            pair = [x.flip(-1) if view & 1 else x for x in (low[batch], high[batch])]
            pair = [x.flip(-2) if view & 2 else x for x in pair]
            pair = [x.transpose(-1, -2) if view & 4 else x for x in pair]
            loss = loss_of(net, *pair, symmetric=False)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(batch)
        net.eval()
        with torch.no_grad():
            val = float(loss_of(net, *val_set))
        log.append((epoch, total / len(low), val))
        print(f"epoch {epoch:3d}  train {total / len(low):.4f}  val {val:.4f}", flush=True)
        if val < best[0]:
            best = (val, {k: v.detach().clone() for k, v in net.state_dict().items()})
    return best[1], log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", help="the work folder of prepare_photos.sh")
    parser.add_argument("--out", default=str(Path(__file__).parents[2] / "src/gsad/resources/exposure.safetensors"))
    args = parser.parse_args()
    from safetensors.torch import save

    torch.set_num_threads(1)
    start = time.perf_counter()
    work = Path(args.work)
    photos = [shrink(read_image(p)) for p in list_images(work / "photos" / "train_full")]
    train_set = pool(photos, DRAWS, SEED)
    val_set = validation_set(work)
    print(f"{len(train_set[0])} training and {len(val_set[0])} validation thumbnails "
          f"({time.perf_counter() - start:.0f} s)", flush=True)
    weights, log = train(train_set, val_set)
    epoch, _, val = min(log, key=lambda row: row[2])
    notes = {"recipe": f"benchmarks/default_model/train_exposure.py, seed {SEED}, {EPOCHS} epochs",
             "best_epoch": str(epoch), "val_loss": f"{val:.5f}"}
    data = save({k: v.contiguous() for k, v in weights.items()}, metadata=notes)
    write_output(Path(args.out), lambda tmp: write_bytes(tmp, data), True)
    print(f"best epoch {epoch} (val {val:.4f}); wrote {args.out} ({len(data):,} bytes) "
          f"in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
