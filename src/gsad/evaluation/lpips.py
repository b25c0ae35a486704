"""AlexNet LPIPS (v0.1) on images scaled to [-1, 1], only where the weights already exist on this
machine (torchvision's AlexNet file and the LPIPS linear layers); nothing is ever downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gsad.errors import CheckpointError
from gsad.evaluation.metrics import _check_pair

#: File name of torchvision's AlexNet weights in the torch hub cache.
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"



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
