"""The ``gsad`` command line: flags -> config -> library call; user errors -> one line.

Each command is a module of this package with ``add_arguments(parser)`` and ``run(args)``, named in
:data:`COMMANDS`. Only the chosen command's module is imported, so ``gsad --help`` and
``gsad CMD --help`` load neither torch nor numpy. ``main(argv)`` returns the exit code: 0
success, 1 when something failed (a :class:`~gsad.errors.GsadError`, printed as one line naming
the file and the problem), 2 for usage errors (argparse), 130 when interrupted (Ctrl-C), 143 when
stopped by SIGTERM (``timeout``, systemd, docker, torchrun): both leave no temporary file behind.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from gsad import __version__
from gsad.cli.options import PROG, Parser, print_error
from gsad.errors import GsadError
from gsad.runtime.signals import EXIT_CODE as TERMINATED_EXIT_CODE
from gsad.runtime.signals import Terminated, sigterm_raises

#: Command name -> (module in gsad.cli, one-line help).
COMMANDS: dict[str, tuple[str, str]] = {
    "enhance": ("enhance", "enhance low-light images"),
    "convert": ("convert", "convert a reference .pth checkpoint to gsad's .safetensors"),
    "synthesize": ("synthesize", "make synthetic low-light pairs from normal photos (camera model)"),
    "tune-schedule": ("tune_schedule",
                      "search the test schedule for the best validation PSNR (or SSIM); store it in the checkpoint"),
    "evaluate": ("evaluate", "score a model or another method's outputs on paired data (plain and GT-mean)"),
    "export": ("export", "write a model's network as ONNX for other runtimes (needs gsad[export])"),
    "train": ("train", "train a GSAD model: stage 1 (uncertainty) or stage 2 (gsad)"),
    "demo": ("demo", "serve a local web page to enhance photos and compare before and after (needs gsad[demo])"),
}


def command_module(name: str):
    """The module of command ``name`` (imported on first use)."""
    return importlib.import_module(f"gsad.cli.{COMMANDS[name][0]}")


def _chosen(argv: Sequence[str]) -> str | None:
    """The command named in ``argv``: its first word that is not an option (gsad's own options take
    no values), when that is a command."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in COMMANDS else None


def build_parser(command: str | None = None) -> Parser:
    """The parser with every command listed, and the options of ``command`` (all commands' when None)."""
    parser = Parser(
        prog=PROG,
        description="Low-light image enhancement with a global structure-aware diffusion process (GSAD).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        if command is None or name == command:
            command_module(name).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 usage, 130 interrupted, 143 SIGTERM)."""
    import sys

    argv = sys.argv[1:] if argv is None else list(argv)
    command = _chosen(argv)
    parser = build_parser(command) if command else build_parser("")  # no command: list them, build none
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        with sigterm_raises():
            return command_module(args.command).run(args)
    except GsadError as exc:
        print_error(str(exc))
        return 1
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130
    except Terminated:
        print_error("terminated (SIGTERM)")
        return TERMINATED_EXIT_CODE
