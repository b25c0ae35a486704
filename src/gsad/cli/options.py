"""What the commands share: gsad's argparse parser with one-line errors, the checked option types
(each applies gsad.config's checker, so a flag, an API call and a stored value share one rule), and
the option groups several commands take (sampler flags, speed, image size limit).

Imports neither torch nor numpy: ``gsad CMD --help`` builds its parser from this module and
gsad.config alone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from gsad.config import (
    ENGINE_CHOICES,
    MAX_ENSEMBLE,
    MAX_PIXELS,
    MAX_STEPS,
    MAX_TILE,
    PRECISION_CHOICES,
    SAMPLER_FIELDS,
    SAMPLER_NAMES,
    START_NAMES,
    TOLERANCE_LEVELS,
    check_beta,
    check_detail,
    check_ensemble,
    check_exposure,
    check_int,
    check_real,
    check_seed,
    check_steps,
)
from gsad.errors import ConfigError

PROG = "gsad"


def print_error(message: str) -> None:
    """``gsad: error: MESSAGE`` on stderr as one write of the whole line, newline included (print()
    writes the text and the newline separately, so two torchrun ranks' lines could interleave)."""
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()


class Parser(argparse.ArgumentParser):
    """argparse with gsad's one-line errors: ``gsad: error: argument --steps: ...``, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print_error(f"{message} (see '{self.prog} --help')")
        raise SystemExit(2)


def checked(parse: Callable[[str], object], check: Callable[[object, str], object], what: str) -> Callable:
    """An argparse type: ``parse`` the text, then apply gsad.config's checker (the same one the
    library and checkpoint loading use), so a flag, an API call and a stored value share one rule."""

    def convert(text: str) -> object:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        try:
            return check(value, "")
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def whole(low: int, high: int) -> Callable[[str], int]:
    return checked(int, lambda v, name: check_int(v, name, low, high), "a whole number")


def real(low: float, high: float, open_low: bool = False, open_high: bool = False) -> Callable[[str], float]:
    return checked(float, lambda v, name: check_real(v, name, low, high, open_low, open_high), "a number")


positive_int = whole(1, 2**31 - 1)
tile_size = whole(0, MAX_TILE)
port = whole(1, 65535)
steps = checked(int, check_steps, "a whole number")
seed = checked(int, check_seed, "a whole number")
ensemble = checked(int, check_ensemble, "a whole number")
detail = checked(float, check_detail, "a number")
beta = checked(float, check_beta, "a number")
exposure = checked(float, check_exposure, "a number")
megapixels = real(0.0, 1e6, open_low=True)


def model(value: str | None) -> str | None:
    """A ``--checkpoint`` value: ``default`` names the bundled model (its file in the installed package,
    :func:`gsad.checkpoints.model_path`), anything else the path it says; None stays None."""
    if value is None:
        return None
    from gsad.checkpoints import model_path

    return str(model_path(value))


def add_max_megapixels(parser: argparse.ArgumentParser) -> None:
    """``--max-megapixels``: the size limit of image files read (gsad.config.MAX_PIXELS)."""
    parser.add_argument("--max-megapixels", type=megapixels, default=MAX_PIXELS / 1e6, metavar="MP",
                        help=f"refuse image files larger than MP megapixels, from their header, before decoding "
                             f"(default {MAX_PIXELS / 1e6:g}; protects against decompression bombs)")


def max_pixels(args: argparse.Namespace) -> int:
    return int(args.max_megapixels * 1e6)


def sampler_flags() -> dict[str, dict[str, object]]:
    """argparse keywords of the flag of each SamplerConfig field (the one table behind every
    command's sampler flags)."""
    return {
        "sampler": {"choices": SAMPLER_NAMES,
                    "help": "reference: the paper's ancestral DDPM sampler; ddim: deterministic DDIM (eta 0); "
                            "dpmpp: deterministic DPM-Solver++(2M), fewer steps"},
        "steps": {"type": steps,
                  "help": f"number of sampling steps, 1-{MAX_STEPS}, fewer where the betas would drive alpha_bar "
                          "below 1e-30 (paper: 20 for LOL-v1, 10 for LOL-v2)"},
        "beta_start": {"type": beta, "help": "first beta of the short linear test schedule (paper LOL-v1: 6e-4)"},
        "beta_end": {"type": beta, "help": "last beta of the short linear test schedule (paper LOL-v1: 0.88)"},
        "seed": {"type": seed,
                 "help": "seed of the sampler's noise, 0 to 2**32 - 1; same seed, same output on any device"},
        "start": {"choices": START_NAMES,
                  "help": "noise: start the trajectory from pure noise (the paper); exposure: from the input's "
                          "global auto-exposure, noised to the schedule's first level (warm start); "
                          "soft-exposure: from the soft auto-exposure (no gain for well-exposed inputs); "
                          "learned-exposure: from a small network's global exposure and colour correction"},
        "ensemble": {"type": ensemble, "metavar": "N",
                     "help": f"average N trajectories run on flipped/transposed copies of the input "
                             f"(1-{MAX_ENSEMBLE}): less residual noise, N times the time"},
        "detail": {"type": detail, "metavar": "S",
                   "help": "strength 0-1 of the detail restoration after sampling: the input's fine detail "
                           "put back where it stands above the input's noise (0: off, the paper)"},
    }


def sampler_flag(name: str, prefix: str = "") -> str:
    """The flag of SamplerConfig field ``name``: ``--sampler``, else ``--PREFIXname`` with dashes."""
    return "--sampler" if name == "sampler" else f"--{prefix}{name.replace('_', '-')}"


def sampler_dest(name: str, prefix: str) -> str:
    return sampler_flag(name, prefix)[2:].replace("-", "_")


def add_sampler_options(
    parser: argparse.ArgumentParser, prefix: str = "", title: str = "sampler (defaults come from the checkpoint)"
) -> None:
    """One flag per SamplerConfig field (:data:`~gsad.config.SAMPLER_FIELDS`), unset (None) by
    default: ``--sampler``, ``--steps`` ... ``--ensemble`` for enhance, evaluate and convert;
    ``gsad train`` spells them ``--sampler-steps`` ... (``prefix="sampler-"``), since its own
    ``--seed`` is the training seed."""
    flags = sampler_flags()
    g = parser.add_argument_group(title)
    for name in SAMPLER_FIELDS:  # a field without an entry in the table is a KeyError, not a lost option
        g.add_argument(sampler_flag(name, prefix), dest=sampler_dest(name, prefix), **flags[name])


def add_speed_options(parser: argparse.ArgumentParser, evaluate: bool = False) -> None:
    """--precision and --verbose, shared by enhance and evaluate (see gsad.runtime.fastpath)."""
    exact = (" (auto means fp32 for a reference .pth checkpoint; give fp32 to score any model exactly as "
             "fp32 computes it)") if evaluate else ""
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                        help=f"network precision: auto (default): the fastest of fp32/bf16/fp16 on this device "
                             f"whose output stays within {TOLERANCE_LEVELS:g} level of 255 (mean) of fp32, from the "
                             f"hardware and a short probe cached per machine{exact}; fp32 (exact, reproduces the "
                             "reference code), bf16 (CPUs with avx512_bf16/amx_bf16, GPUs), fp16 (GPUs)")
    parser.add_argument("--engine", choices=ENGINE_CHOICES, default=None,
                        help="what runs the network: auto (default, or $GSAD_ENGINE): with --precision auto, the "
                             "fastest of torch and, where pip install \"gsad[fast]\" installed them, ONNX Runtime "
                             "and OpenVINO on the CPU (timed once per machine; the first run also exports the "
                             "network to ONNX, kept in the cache folder), else torch; torch: torch only (what gsad "
                             "does without the extra); onnxruntime (fp32) or openvino (fp32, bf16): that engine")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="say which network path (precision, Winograd, layout) was taken and why")


def report_path(enhancer: object, args: argparse.Namespace) -> None:
    """With --verbose, one stderr line naming the enhancer's network path."""
    if args.verbose:
        print(f"{PROG}: network: {enhancer.fast_path.describe()}", file=sys.stderr)


def sampler_overrides(args: argparse.Namespace, prefix: str = "") -> dict[str, object]:
    """The sampler flags given on the command line (None where unset), keyed by SamplerConfig field."""
    return {k: getattr(args, sampler_dest(k, prefix)) for k in SAMPLER_FIELDS}
