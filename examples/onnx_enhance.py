"""Enhance a photo with a gsad ONNX file, onnxruntime and numpy only (no torch, no gsad).

    gsad export default gsad.onnx                       # once, where gsad is installed
    python onnx_enhance.py gsad.onnx dark.png bright.png   # anywhere: pip install onnxruntime numpy pillow

It runs what ``gsad enhance --detail 0`` runs with the settings stored in the file: the
reference (ancestral DDPM) sampler from a warm start, averaged over the self-ensemble's
flipped views. The noise comes from numpy, so the result differs from gsad's by the
sampler's randomness (two seeds of gsad differ as much); ``enhance(..., noise=...)`` takes
any source of standard normal arrays (the test feeds it torch's to match gsad exactly). The
detail-restoration step is left out (pass ``--detail 0`` to gsad to compare).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image


def schedule(steps: int, beta_start: float, beta_end: float) -> dict[str, np.ndarray]:
    """The sampler's tables (float64 maths, float32 out, as gsad's), t = 0 .. steps-1."""
    betas = np.linspace(beta_start, beta_end, steps, dtype=np.float64)
    ab = np.cumprod(1.0 - betas)
    ab_prev = np.append(1.0, ab[:-1])
    variance = betas * (1.0 - ab_prev) / (1.0 - ab)
    tables = {
        "level": np.sqrt(ab), "recip": np.sqrt(1.0 / ab), "recipm1": np.sqrt(1.0 / ab - 1.0),
        "c1": betas * np.sqrt(ab_prev) / (1.0 - ab), "c2": (1.0 - ab_prev) * np.sqrt(1.0 - betas) / (1.0 - ab),
        "std": np.exp(0.5 * np.log(np.maximum(variance, 1e-20))),
    }
    return {k: v.astype(np.float32) for k, v in tables.items()}


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(y: np.ndarray) -> np.ndarray:
    y = np.clip(y, 0.0, 1.0)
    return np.where(y <= 0.0031308, y * 12.92, 1.055 * y ** (1 / 2.4) - 0.055)


def warm_start(image: np.ndarray, start: str) -> np.ndarray | None:
    """The start estimate of x0 (uint8 H x W x 3): gsad's global auto-exposure to 18 % grey in linear
    light (``exposure``), faded out for brighter photos (``soft-exposure``); None for ``noise``."""
    if start == "noise":
        return None
    linear = srgb_to_linear(image.astype(np.float64) / 255.0)
    mean = float((linear @ np.array([0.2126, 0.7152, 0.0722])).mean())
    gain = 0.18 / mean if mean > 0 else 1.0
    if start == "soft-exposure":
        if mean <= 0 or mean >= 0.18:
            gain = 1.0
        else:
            lo, hi = np.log(0.02), np.log(0.08)
            gain = (0.18 / mean) ** float(np.clip((hi - np.log(mean)) / (hi - lo), 0.0, 1.0))
        if gain == 1.0:
            return image
    return np.round(linear_to_srgb(linear * gain) * 255.0).astype(np.uint8)


def to_model(image: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3 -> float32 1 x 3 x H x W in [-1, 1]."""
    return (image.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(127.5) - np.float32(1.0))


def pad(x: np.ndarray, stride: int) -> np.ndarray:
    """Reflect-pad the bottom and right to multiples of ``stride`` (edge copies where too small)."""
    h, w = x.shape[-2:]
    ph, pw = -h % stride, -w % stride
    mode = "reflect" if ph < h and pw < w else "edge"
    return np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode) if ph or pw else x


def view(x: np.ndarray, k: int, inverse: bool = False) -> np.ndarray:
    """The k-th of gsad's eight grid symmetries (flips, then a transpose for k >= 4), or its inverse."""
    flips = ((), (-1,), (-2,), (-2, -1))[k % 4]
    if inverse and k >= 4:
        x = x.swapaxes(-2, -1)
    if flips:
        x = np.flip(x, flips)
    if not inverse and k >= 4:
        x = x.swapaxes(-2, -1)
    return np.ascontiguousarray(x)


def trajectory(session, low: np.ndarray, start: np.ndarray | None, s: dict, stride: int, normal) -> np.ndarray:
    """One reference-sampler run on ``low`` (1 x 3 x H x W in [-1, 1]); x0 cropped back to H x W."""
    h, w = low.shape[-2:]
    cond = pad(low, stride)
    x = normal(cond.shape)
    if start is not None:
        g = s["level"][-1]
        x = g * pad(start, stride) + np.sqrt(np.float32(1.0) - g * g) * x
    for t in reversed(range(len(s["level"]))):
        inputs = {"x": np.concatenate([cond, x], axis=1), "level": np.full(1, s["level"][t], np.float32)}
        eps = session.run(None, inputs)[0]
        x0 = np.clip(s["recip"][t] * x - s["recipm1"][t] * eps, -1.0, 1.0)
        x_prev = s["c1"][t] * x0 + s["c2"][t] * x
        x = x_prev + s["std"][t] * normal(x.shape) if t > 0 else x_prev
    return x[..., :h, :w]


def numpy_noise(seed: int):
    """Noise for view k of the self-ensemble: standard normals from numpy's generator seeded ``seed + k``."""
    def for_view(k: int):
        rng = np.random.default_rng(seed + k)
        return lambda shape: rng.standard_normal(shape).astype(np.float32)
    return for_view


def enhance(session, image: np.ndarray, noise=None) -> np.ndarray:
    """Enhance a uint8 H x W x 3 image with the settings stored in the session's file.

    ``noise(k)`` gives view k's source of standard normal float32 arrays (``normal(shape)``);
    default :func:`numpy_noise` of the file's seed."""
    meta = session.get_modelmeta().custom_metadata_map
    if not meta.get("gsad.format", "").startswith("gsad-eps-onnx/"):
        raise ValueError("not a gsad ONNX file (gsad export writes them)")
    settings, stride = json.loads(meta["gsad.sampler"]), int(meta["gsad.stride"])
    if settings["sampler"] != "reference":
        print(f"note: the file's sampler is {settings['sampler']}; this example runs the reference sampler")
    tables = schedule(settings["steps"], settings["beta_start"], settings["beta_end"])
    noise = noise or numpy_noise(settings["seed"])
    estimate = warm_start(image, settings["start"])
    low = to_model(image)
    total = None
    for k in range(settings["ensemble"]):
        start = None if estimate is None else view(to_model(estimate), k)
        out = view(trajectory(session, view(low, k), start, tables, stride, noise(k)), k, inverse=True)
        total = out if total is None else total + out
    mean = total / np.float32(settings["ensemble"])
    return (np.clip((mean[0] + 1.0) / 2.0, 0.0, 1.0) * 255.0).round().astype(np.uint8).transpose(1, 2, 0)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python onnx_enhance.py MODEL.onnx IN OUT", file=sys.stderr)
        return 2
    session = ort.InferenceSession(argv[0], providers=["CPUExecutionProvider"])
    with Image.open(argv[1]) as im:
        image = np.asarray(im.convert("RGB"))
    Image.fromarray(enhance(session, image)).save(argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
