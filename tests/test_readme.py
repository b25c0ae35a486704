"""The README's commands work as written.

``test_readme_blocks_run`` runs the README's fenced ``bash``, ``sh`` and ``python`` blocks in the
order they appear, in one temporary working folder that holds a copy of the files the commands
read (``INPUTS``), each command as a user would type it, and checks that it exits with status 0
and that every output it names exists. Two kinds of text are left out, explicitly:

- ``pip install`` commands (``PIP``): the package is already installed where the tests run. In
  ``pip install -e . && gsad enhance ...`` only the ``pip install`` part is dropped.
- whole blocks that mention a ``SKIP_MARKERS`` string: they need what only a download gives (the
  paper's checkpoints, the LOL datasets), a server that runs until stopped, or would run this
  test suite again. ``MIN_BLOCKS_RUN`` / ``MIN_COMMANDS_RUN`` make sure the rule does not quietly
  skip everything.

The other tests are cheap checks of every page (README.md and docs/*.md): the set-up block is the
one ``.ci/run`` runs, the test command is the one it runs, every ``gsad`` flag written anywhere
exists, relative links resolve, and no page talks about how the project was worked on.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

#: A block mentioning any of these is not run (the value says why).
SKIP_MARKERS = {
    "checkpoints/": "needs the paper's .pth checkpoints (downloaded from the reference repository's links)",
    ".pth": "needs the paper's .pth checkpoints",
    "dataset/": "needs the LOL datasets (downloaded)",
    "gsad demo": "serves until it is stopped",
    "127.0.0.1": "talks to a running gsad demo",
    "pytest": "runs the test suite, which would run this test again",
}
#: ``pip install`` commands are dropped: the package is installed already.
PIP = re.compile(r"^\s*(python3? -m )?pip3? install\b")
#: Languages of the fenced blocks that are run.
RUN_LANGUAGES = ("bash", "sh", "python")
#: Files the README's commands read, copied into the working folder.
INPUTS = ("src/gsad/resources", "examples")
#: Flags whose value is a path the command writes.
OUTPUT_FLAGS = ("-o", "--output", "--out", "--report", "--csv", "--outputs")
#: At least this many blocks and commands must run.
MIN_BLOCKS_RUN = 5
MIN_COMMANDS_RUN = 8
#: Seconds one command may take.
COMMAND_TIMEOUT = 900


def fenced_blocks(path: Path) -> list[tuple[str, str, str, int]]:
    """(language, text, heading, first line number) of every fenced block of ``path``, in order."""
    blocks, heading, lang, start, lines = [], "", None, 0, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if lang is None:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            elif line.startswith("```"):
                lang, start, lines = line[3:].strip(), number + 1, []
        elif line.startswith("```"):
            blocks.append((lang, "\n".join(lines), heading, start))
            lang = None
        else:
            lines.append(line)
    assert lang is None, f"{path.name}: a fenced block is not closed"
    return blocks


def shell_commands(text: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blanks dropped."""
    commands, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        commands.append(current + line)
        current = ""
    assert not current, f"a shell block ends with a continuation line: {current!r}"
    return commands


def without_pip(command: str) -> str:
    """``command`` without its ``pip install`` parts (``a && b`` chains); '' when nothing is left."""
    return " && ".join(part.strip() for part in command.split("&&") if not PIP.match(part))


def skip_reason(text: str) -> str | None:
    for marker, why in SKIP_MARKERS.items():
        if marker in text:
            return f"mentions {marker!r}: {why}"
    return None


def shell_outputs(command: str) -> list[str]:
    """The paths a command names after an output flag (``-o X``, ``--report=X``, ...)."""
    words = shlex.split(command, comments=True)
    outputs = []
    for i, word in enumerate(words):
        if word in OUTPUT_FLAGS and i + 1 < len(words):
            outputs.append(words[i + 1])
        elif word.startswith("--") and "=" in word and word.split("=", 1)[0] in OUTPUT_FLAGS:
            outputs.append(word.split("=", 1)[1])
    return outputs


def python_outputs(code: str) -> list[str]:
    """The files a Python block saves (``.save("x.png")``)."""
    return re.findall(r"\.save\(\s*[\"']([^\"']+)[\"']", code)


def check_new(work: Path, names: list[str], what: str) -> None:
    """An output an earlier README command already wrote would be refused (or prove nothing)."""
    for name in names:
        assert not (work / name).exists(), f"{what}: {name} exists already (written by an earlier command)"


def check_written(work: Path, names: list[str], what: str) -> None:
    for name in names:
        path = work / name
        assert path.exists(), f"{what}: wrote no {name}"
        if path.is_dir():
            assert any(path.iterdir()), f"{what}: the folder {name} is empty"
        else:
            assert path.stat().st_size > 0, f"{what}: {name} is empty"


def _children_cpu() -> float:
    times = os.times()  # children's times are 0 where the platform does not report them
    return times.children_user + times.children_system


def run(args: list[str], work: Path, what: str) -> None:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")  # this Python's gsad
    started, cpu = time.monotonic(), _children_cpu()
    done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    seconds, cpu = time.monotonic() - started, _children_cpu() - cpu
    assert done.returncode == 0, (
        f"{what} failed with status {done.returncode} after {seconds:.0f} s\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )
    print(f"{seconds:6.1f} s wall {cpu:6.1f} s CPU  {what}")


def test_readme_blocks_run(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for name in INPUTS:
        skip = ("__pycache__",) if name == "examples" else ("__pycache__", "*.py")  # the package is installed
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns(*skip))
    blocks_run = commands_run = 0
    skipped = []
    for lang, text, heading, line in fenced_blocks(README):
        if lang not in RUN_LANGUAGES:
            continue
        where = f"README.md:{line} ({heading})"
        reason = skip_reason(text)
        if reason:
            skipped.append(f"{where}: {reason}")
            continue
        if lang == "python":
            script = work / f"readme_block_{line}.py"
            script.write_text(text, encoding="utf-8")
            check_new(work, python_outputs(text), where)
            run([sys.executable, script.name], work, f"{where}: python block")
            check_written(work, python_outputs(text), where)
            commands_run += 1
        else:
            for command in map(without_pip, shell_commands(text)):
                if not command:
                    continue
                if "--overwrite" not in command:
                    check_new(work, shell_outputs(command), f"{where}: {command}")
                run(["bash", "-euo", "pipefail", "-c", command], work, f"{where}: {command}")
                check_written(work, shell_outputs(command), f"{where}: {command}")
                commands_run += 1
        blocks_run += 1
    print("skipped:\n  " + "\n  ".join(skipped))
    assert blocks_run >= MIN_BLOCKS_RUN, f"only {blocks_run} README blocks ran; skipped: {skipped}"
    assert commands_run >= MIN_COMMANDS_RUN, f"only {commands_run} README commands ran"


def setup_section(text: str) -> str:
    match = re.search(r"^## Set up\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "README.md has no '## Set up' section"
    return match.group(1)


def test_setup_block_is_the_first_command_ci_runs() -> None:
    """.ci/run runs the first ```bash block under '## Set up' in a venv with only torch and checks
    the image after its last -o: that block must install gsad and enhance a bundled photo."""
    section = setup_section(README.read_text(encoding="utf-8"))
    block = re.search(r"^```bash\n(.*?)^```", section, re.S | re.M)
    assert block, "no ```bash block under '## Set up'"
    command = block.group(1).strip()
    assert "\n" not in command, "the first command is one line"
    assert command.startswith("pip install -e . && gsad enhance ")
    assert re.search(r" -o \S+\.png$", command)
    # PyTorch is installed before it, in the prose (a ```bash block there would become the first command)
    before = section[: block.start()]
    assert "pip install torch" in before and "https://download.pytorch.org/whl/cpu" in before
    assert "```" not in before


def test_test_command_is_what_ci_runs() -> None:
    blocks = [text for lang, text, _, _ in fenced_blocks(README) if lang == "bash" and "pytest" in text]
    assert len(blocks) == 1, "one README block holds the test command"
    lines = [line.strip() for line in blocks[0].splitlines() if line.strip()]
    assert lines == ['python3 -m pip install -e ".[test]"', "python3 -m pytest -q"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'python3 -m pip install --quiet -e ".[test]"' in ci
    assert re.search(r"^python3 -m pytest -q$", ci, re.M)


def gsad_commands(path: Path) -> list[str]:
    """Every gsad command line written on a page: in shell blocks and in inline code."""
    commands = []
    for lang, text, _, _ in fenced_blocks(path):
        if lang in ("bash", "sh"):
            commands += shell_commands(text)
    prose = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    commands += [" ".join(span.split()) for span in re.findall(r"`(gsad [^`]+)`", prose)]
    return commands


@functools.cache
def help_text(subcommand: str) -> str:
    from gsad.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([subcommand, "--help"])
    assert code == 0, f"gsad {subcommand} --help failed"
    return out.getvalue()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_gsad_flags_exist(page: Path) -> None:
    """Every --flag given to a gsad subcommand on a page is one that subcommand has."""
    from gsad.cli import COMMANDS

    checked = 0
    for command in gsad_commands(page):
        for part in command.split("&&"):
            words = shlex.split(part, comments=True)
            for i, word in enumerate(words[:-1]):
                if word == "gsad" and words[i + 1] in COMMANDS:
                    subcommand = words[i + 1]
                    flags = [m.group() for w in words[i + 2 :] if (m := re.match(r"--[a-z][a-z0-9-]*", w))]
                    for flag in flags:
                        assert re.search(rf"(^|[\s\[,]){re.escape(flag)}(?![\w-])", help_text(subcommand)), (
                            f"{page.name}: gsad {subcommand} has no {flag}: {command}"
                        )
                    checked += 1
                    break
    if page == README:
        assert checked >= 10


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        assert (page.parent / target.split("#")[0]).exists(), f"{page.name}: broken link {target}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_pages_do_not_talk_about_the_work(page: Path) -> None:
    """Pages are for users: no issue numbers, no work sessions."""
    text = page.read_text(encoding="utf-8")
    found = re.findall(r"\bissues? #?\d+|\bsessions?\b", text, re.I)
    assert not found, f"{page.name}: {found}"
