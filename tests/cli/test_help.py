"""Every option of every subcommand carries help text, `--help` prints it, and it is instant: a help
loads neither torch nor numpy (only the chosen command's module is imported)."""

import argparse
import re
import subprocess
import sys
import time

import pytest

from gsad.cli import COMMANDS, build_parser, main
from gsad.cli.train import TRAIN_HIDDEN_ALIASES


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_command_is_listed():
    assert set(_subparsers()) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_has_help_text(command, capsys):
    parser = _subparsers()[command]
    hidden = set(TRAIN_HIDDEN_ALIASES) if command == "train" else set()  # old spellings, deliberately hidden
    actions = [a for a in parser._actions
               if not isinstance(a, argparse._HelpAction) and not hidden.intersection(a.option_strings)]
    assert actions
    missing = [a.option_strings or a.dest for a in actions
               if not isinstance(a.help, str) or a.help == argparse.SUPPRESS or len(a.help.split()) < 2]
    assert not missing, f"options of {command} without help text: {missing}"
    assert main([command, "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for action in actions:
        name = action.option_strings[-1] if action.option_strings else (action.metavar or action.dest)
        assert name in shown
        # the help text itself is printed (its first words, %-formatting aside)
        words = " ".join(re.sub(r"%\([a-z_]+\)s", "", action.help).split()[:3])
        assert words in shown, f"{command} {name}: help text {words!r} not in --help"


@pytest.mark.parametrize(("command", "expected"), [
    ("demo", ["--checkpoint", "--host", "--port", "--device"]),
    ("train", ["--data", "--stage", "--init", "--preset", "--max-steps", "--batch-size", "--crop", "--lr", "--out",
               "--config", "--resume", "--val-data", "--structure-weight", "--amp", "--synthetic",
               "--loss-weighting", "--warm-start", "distill", "--teacher", "--student-steps", "--gt-weight",
               "lolv1_gsad", "YAML"]),  # YAML use and the shipped configs are explained
])
def test_help_names_the_key_options_and_topics(command, expected, capsys):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    missing = [item for item in expected if item not in text]
    assert not missing, f"gsad {command} --help does not mention {missing}"


#: In a fresh interpreter: each help in argv's JSON list, then which heavy packages got loaded.
_FRESH = """
import contextlib, io, json, sys, time
from gsad.cli import main
started = time.perf_counter()
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(argv) == 0 and "usage: gsad" in out.getvalue(), argv
print(json.dumps({"seconds": time.perf_counter() - started,
                  "loaded": sorted(m for m in ("torch", "numpy", "PIL") if m in sys.modules)}))
"""


@pytest.mark.parametrize("command", [None, *sorted(COMMANDS)])
def test_help_loads_neither_torch_nor_numpy(command):
    import json

    argv = ["--help"] if command is None else [command, "--help"]
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", _FRESH, json.dumps([argv])], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["loaded"] == [], f"gsad {' '.join(argv)} imported {result['loaded']}"
    assert result["seconds"] < 2.0, f"building the parser took {result['seconds']:.2f} s"  # measured ~0.05 s
    assert time.perf_counter() - started < 60
