"""Image quality metrics, the paper's protocol (DESIGN.md section 4); no file walking.

All functions take ``H x W x 3`` uint8 RGB arrays (``out`` = the method's output,
``gt`` = the normal-light reference) and compute in float64.

* :func:`psnr`: ``10 log10(255^2 / MSE)``, MSE over all pixels and channels.
* :func:`ssim`: scikit-image ``structural_similarity`` on the 8-bit colour images, 7x7
  uniform window, data range 255, sample covariance, mean over the three channels.
* :func:`gt_mean_adjust`: the GT-mean protocol, which rescales the output's brightness
  to the reference's before scoring (the paper reports only this; we report both).
* :class:`LPIPS`: AlexNet LPIPS (v0.1) on images scaled to [-1, 1], only where the weights
  already exist on this machine; nothing is ever downloaded.
* :func:`detail_ratio`: fine-detail energy of ``out`` over ``gt`` (Laplacian variance of the
  grey image): below 1 the output is smoother than the reference, above 1 it holds more
  high frequencies (noise, invented grain); ~1 is the target.
* :func:`mean_level`: mean grey level, for the brightness ratios of the do-no-harm check.
"""

from __future__ import annotations

import importlib.util
import math
import os
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gsad.errors import CheckpointError, DependencyError, InputError

#: ITU-R BT.601 luma weights of the GT-mean protocol (R, G, B).
GRAY_WEIGHTS = (0.299, 0.587, 0.114)

#: File name of torchvision's AlexNet weights in the torch hub cache.
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


def _check_pair(img1: np.ndarray, img2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(img1), np.asarray(img2)
    for arr in (a, b):
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise InputError(f"metrics expect H x W x 3 uint8 images, got shape {arr.shape} dtype {arr.dtype}")
    if a.shape != b.shape:
        raise InputError(f"images differ in size: {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}")
    return a, b


#: What to run when scikit-image is missing (a core dependency; the ``eval`` extra also names it).
SKIMAGE_INSTALL = 'pip install "gsad[eval]"'


def require_skimage():
    """scikit-image's ``structural_similarity``, imported on first use so that ``gsad --help`` and
    enhancing never need it; :class:`DependencyError` (one line naming the install command) if missing."""
    try:
        from skimage.metrics import structural_similarity
    except ImportError as exc:
        raise DependencyError(f"SSIM needs scikit-image, which is not importable here ({exc}); "
                              f"install it with: {SKIMAGE_INSTALL}") from None
    return structural_similarity


def psnr(img1: np.ndarray, img2: np.ndarray) -> float:
    """PSNR in dB of two ``H x W x 3`` uint8 images: ``10 log10(255^2 / MSE)``.

    MSE is the float64 mean over all pixels and channels; identical images give ``inf``.
    """
    a, b = _check_pair(img1, img2)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ssim(img1: np.ndarray, img2: np.ndarray) -> float:
    """SSIM of two ``H x W x 3`` uint8 images, as scikit-image computes it.

    ``structural_similarity(win_size=7, data_range=255, channel_axis=2,
    gaussian_weights=False, use_sample_covariance=True)``: a 7x7 uniform window, the
    mean of the SSIM map (without a 3-pixel border) per channel, averaged over channels.
    Images need at least 7 pixels on each side.
    """
    a, b = _check_pair(img1, img2)
    if min(a.shape[:2]) < 7:
        raise InputError(f"SSIM needs images of at least 7x7 pixels, got {a.shape[1]}x{a.shape[0]}")
    structural_similarity = require_skimage()
    return float(
        structural_similarity(
            a,
            b,
            win_size=7,
            data_range=255,
            channel_axis=2,
            gaussian_weights=False,
            use_sample_covariance=True,
        )
    )


def gray_mean(img01: np.ndarray) -> np.float32:
    """Mean grey level of an ``H x W x 3`` RGB image in [0, 1], as the reference computes it:
    the image cast to float32, ``gray = 0.114 B + 0.587 G + 0.299 R`` per pixel in float32
    (OpenCV's ``COLOR_BGR2GRAY`` on BGR data, i.e. the ordinary luma), then numpy's float32
    mean of the grey image. Returns a float32 scalar."""
    x = np.asarray(img01).astype(np.float32)
    r_w, g_w, b_w = (np.float32(w) for w in GRAY_WEIGHTS)
    gray = x[..., 2] * b_w + x[..., 1] * g_w + x[..., 0] * r_w
    return gray.mean()


def gt_mean_adjust(out_u8: np.ndarray, gt_u8: np.ndarray) -> np.ndarray:
    """The GT-mean protocol: scale ``out`` so its mean grey level equals the reference's.

    With ``out01 = out / 255``, ``gt01 = gt / 255`` (float64) and grey means from
    :func:`gray_mean` (``gray = 0.299 R + 0.587 G + 0.114 B``, float32 as in the reference):
    ``scale = gray_mean(gt01) / gray_mean(out01)`` (float32), ``adjusted = clip(out01 *
    scale, 0, 1)``, returned as ``floor(adjusted * 255)`` (truncation), ``H x W x 3`` uint8.
    This is the reference test script's arithmetic step for step (its ``tensor2img`` gives
    BGR arrays, so OpenCV's BGR2GRAY weighs R by 0.299 and B by 0.114, as here). An
    all-black ``out`` cannot be rescaled and is returned unchanged.
    """
    out, gt = _check_pair(out_u8, gt_u8)
    out01, gt01 = out / 255.0, gt / 255.0
    mean_out = gray_mean(out01)
    if mean_out == 0.0:
        return out.copy()
    scale = gray_mean(gt01) / mean_out  # float32, as in the reference
    adjusted = np.clip(out01 * np.float64(scale), 0.0, 1.0)
    return (adjusted * 255.0).astype(np.uint8)


def gray(image: np.ndarray) -> np.ndarray:
    """``H x W`` float64 grey levels (0-255) of an ``H x W x 3`` uint8 image (BT.601 weights)."""
    return np.asarray(image, dtype=np.float64) @ np.asarray(GRAY_WEIGHTS, dtype=np.float64)


def mean_level(image: np.ndarray) -> float:
    """Mean grey level (0-255, :data:`GRAY_WEIGHTS`) of an ``H x W x 3`` uint8 image."""
    a, _ = _check_pair(image, image)
    return float(gray(a).mean())


def laplacian_variance(image: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of the grey image (0-255 levels), over the
    pixels that have all four neighbours: the energy of fine detail and noise."""
    a, _ = _check_pair(image, image)
    if min(a.shape[:2]) < 3:
        raise InputError(f"the Laplacian needs images of at least 3x3 pixels, got {a.shape[1]}x{a.shape[0]}")
    g = gray(a)
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


def detail_ratio(out_u8: np.ndarray, gt_u8: np.ndarray) -> float:
    """``laplacian_variance(out) / laplacian_variance(gt)``: 1 when the output holds as much
    fine detail as the reference, < 1 smoothed ("painterly"), > 1 added grain or noise.

    A flat reference gives 1.0 for a flat output and ``inf`` otherwise.
    """
    out, gt = _check_pair(out_u8, gt_u8)
    reference = laplacian_variance(gt)
    value = laplacian_variance(out)
    if reference == 0.0:
        return 1.0 if value == 0.0 else math.inf
    return value / reference


class _AlexNetLPIPS(nn.Module):
    """AlexNet features (torchvision's layer indices) + LPIPS v0.1 linear heads."""

    CHANNELS = (64, 192, 384, 256, 256)
    # Output of feature layer k is taken after these indices of `features` (the ReLUs).
    TAPS = (1, 4, 7, 9, 11)

    def __init__(self) -> None:
        super().__init__()
        # Same modules and indices as torchvision.models.alexnet().features, so its state
        # dict ("features.0.weight", ...) loads as is.
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=False),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=False),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=False),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=False),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=False),
        )
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in self.CHANNELS)
        # LPIPS v0.1 input scaling: (x - shift) / scale, x in [-1, 1].
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, out = (x - self.shift) / self.scale, []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.TAPS:
                out.append(h)
        return out

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """``N x 3 x H x W`` in [-1, 1] (twice) -> ``N`` distances:
        ``sum_k mean_hw(lin_k((f_k(x0)/|f_k(x0)| - f_k(x1)/|f_k(x1)|)^2))``."""
        total = torch.zeros(x0.shape[0], device=x0.device)
        for lin, f0, f1 in zip(self.lins, self.taps(x0), self.taps(x1)):
            n0 = f0 / (f0.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            n1 = f1 / (f1.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((n0 - n1) ** 2).mean(dim=(1, 2, 3))
        return total


def default_alexnet_path() -> Path:
    """Where torchvision keeps AlexNet weights: ``torch.hub.get_dir()/checkpoints/`` +
    :data:`ALEXNET_FILE` (``$TORCH_HOME`` or ``~/.cache/torch/hub`` by default)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


def default_linear_path() -> Path | None:
    """The linear-layer weights the ``lpips`` package ships (``lpips/weights/v0.1/alex.pth``),
    found without importing it (importing it needs torchvision); None if not installed."""
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "weights" / "v0.1" / "alex.pth"


class LPIPS:
    """AlexNet LPIPS (Zhang et al. 2018, v0.1), without torchvision and without downloads.

    Needs two local files: torchvision's AlexNet weights (``alexnet_path``, default
    :func:`default_alexnet_path`) and the LPIPS linear heads (``linear_path``, default the
    file inside an installed ``lpips`` package). :meth:`available` says whether they are
    there and :meth:`unavailable_reason` why not; the constructor raises
    :class:`CheckpointError` when they are missing or do not fit.

    Call with two ``H x W x 3`` uint8 images; each is mapped to [-1, 1] by
    ``x / 127.5 - 1``. Lower is better; 0 for identical images.
    """

    def __init__(
        self,
        alexnet_path: str | os.PathLike | None = None,
        linear_path: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        reason = self.unavailable_reason(alexnet_path, linear_path)
        if reason is not None:
            raise CheckpointError(reason)
        alex = Path(alexnet_path) if alexnet_path is not None else default_alexnet_path()
        lin = Path(linear_path) if linear_path is not None else default_linear_path()
        self.net = _AlexNetLPIPS()
        self._load_alexnet(alex)
        self._load_linear(lin)
        self.device = torch.device(device)
        self.net.eval().requires_grad_(False).to(self.device)

    @staticmethod
    def unavailable_reason(
        alexnet_path: str | os.PathLike | None = None,
        linear_path: str | os.PathLike | None = None,
    ) -> str | None:
        """None when both weight files exist, else one line saying what is missing."""
        alex = Path(alexnet_path) if alexnet_path is not None else default_alexnet_path()
        if not alex.is_file():
            return (
                f"LPIPS skipped: AlexNet weights not found at {alex} "
                "(torchvision's alexnet weights file; nothing is downloaded)"
            )
        lin = Path(linear_path) if linear_path is not None else default_linear_path()
        if lin is None:
            return "LPIPS skipped: the lpips package (its linear-layer weights) is not installed"
        if not lin.is_file():
            return f"LPIPS skipped: LPIPS linear-layer weights not found at {lin}"
        return None

    @classmethod
    def available(
        cls,
        alexnet_path: str | os.PathLike | None = None,
        linear_path: str | os.PathLike | None = None,
    ) -> bool:
        """True when both weight files exist locally (see :meth:`unavailable_reason`)."""
        return cls.unavailable_reason(alexnet_path, linear_path) is None

    @staticmethod
    def _load(path: Path) -> dict:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError) as exc:
            raise CheckpointError(f"{path}: cannot load weights ({exc})") from None
        if not isinstance(state, dict):
            raise CheckpointError(f"{path}: not a state dict")
        return state

    def _load_alexnet(self, path: Path) -> None:
        state = self._load(path)
        wanted = self.net.features.state_dict()
        features = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        if features.keys() != wanted.keys() or any(features[k].shape != wanted[k].shape for k in wanted):
            raise CheckpointError(f"{path}: not torchvision AlexNet weights (features.* keys or shapes differ)")
        self.net.features.load_state_dict(features)

    def _load_linear(self, path: Path) -> None:
        state = self._load(path)
        for i, lin in enumerate(self.net.lins):
            key = f"lin{i}.model.1.weight"
            if key not in state or state[key].shape != lin.weight.shape:
                raise CheckpointError(f"{path}: not LPIPS AlexNet linear weights ({key} missing or misshapen)")
            lin.weight.data.copy_(state[key])

    def __call__(self, out_u8: np.ndarray, gt_u8: np.ndarray) -> float:
        """LPIPS distance of two ``H x W x 3`` uint8 images (float)."""
        a, b = _check_pair(out_u8, gt_u8)

        def tensor(img: np.ndarray) -> torch.Tensor:
            t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].to(torch.float32)
            return (t / 127.5 - 1.0).to(self.device)

        with torch.no_grad():
            return float(self.net(tensor(a), tensor(b))[0])


def score_pair(out_u8: np.ndarray, gt_u8: np.ndarray, lpips: LPIPS | None = None) -> dict[str, float]:
    """All scores of one output against its reference, in both protocols.

    Returns ``{"psnr", "ssim", "psnr_gtmean", "ssim_gtmean"}`` (plus ``"lpips"`` and
    ``"lpips_gtmean"`` when an :class:`LPIPS` scorer is given); the ``*_gtmean`` scores
    are of :func:`gt_mean_adjust`\\ (out, gt) against ``gt``.
    """
    out, gt = _check_pair(out_u8, gt_u8)
    adjusted = gt_mean_adjust(out, gt)
    scores = {
        "psnr": psnr(out, gt),
        "ssim": ssim(out, gt),
        "psnr_gtmean": psnr(adjusted, gt),
        "ssim_gtmean": ssim(adjusted, gt),
    }
    if lpips is not None:
        scores["lpips"] = lpips(out, gt)
        scores["lpips_gtmean"] = lpips(adjusted, gt)
    return scores
