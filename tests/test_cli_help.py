"""Every option of every subcommand carries help text, and `--help` prints it."""

import argparse
import re

import pytest

from gsad.cli import COMMANDS, TRAIN_HIDDEN_ALIASES, build_parser, main


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
