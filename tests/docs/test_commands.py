"""Every `docchain ...` and `make ...` command shown in README.md and docs/*.md exists.

Commands are collected from fenced code blocks (lines starting with the command, after an optional
``$ `` prompt or ``VAR=value`` assignments) and from inline code spans. A docchain command line is run
as written with ``--help`` appended, in this process through the console script's Typer app (65 CLI starts
would cost ~30 s of CPU; one start of the installed script shows it is there): click handles ``--help``
before it looks at arguments, but after it has resolved sub-commands and option names, so an unknown
sub-command or option fails while placeholders like FILE are fine. A make target must exist (``make -n``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from docs_support import ROOT

DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCCHAIN = Path(sys.executable).with_name("docchain")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\S*$")
_STOP = {"|", "||", "&&", ";", ">", ">>", "<", "2>", "&", "#", "\\"}


def _command_lines(text: str) -> list[str]:
    lines: list[str] = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        lines += [line.strip().removeprefix("$ ") for line in block.splitlines()]
    without_blocks = re.sub(r"```.*?```", "", text, flags=re.S)
    lines += re.findall(r"`([^`\n]+)`", without_blocks)
    return lines


def _argv(line: str, program: str) -> list[str] | None:
    line = line.split(" # ")[0].split("  #")[0]
    try:
        words = shlex.split(line, comments=False)
    except ValueError:
        words = line.split()
    while words and _ASSIGN.match(words[0]):
        words = words[1:]
    if not words or words[0] != program:
        return None
    argv = []
    for word in words[1:]:
        if word in _STOP or word.startswith("#") or word.startswith(("|", ">")):
            break
        argv.append(word)
    return argv


def documented(program: str) -> dict[tuple[str, ...], list[str]]:
    """{argv: [where it is documented]}"""
    found: dict[tuple[str, ...], list[str]] = {}
    for path in DOC_FILES:
        if not path.exists():
            continue
        for line in _command_lines(path.read_text()):
            argv = _argv(line, program)
            if argv is not None:
                found.setdefault(tuple(argv), []).append(str(path.relative_to(ROOT)))
    return found


DOCCHAIN_COMMANDS = documented("docchain")
MAKE_COMMANDS = documented("make")


def test_the_docs_show_commands() -> None:
    assert len(DOCCHAIN_COMMANDS) >= 5
    assert ("run",) in MAKE_COMMANDS and ("test",) in MAKE_COMMANDS


@dataclass(frozen=True)
class Help:
    returncode: int
    output: str


@cache
def _all_helps() -> dict[tuple[str, ...], Help]:
    """Every documented command's --help, run once. Documented flags only: no DOCCHAIN_* setting applies."""
    from typer.testing import CliRunner

    from docchain.client.cli import app

    runner = CliRunner()
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("DOCCHAIN_")}
    env = {**unset, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "120"}
    helps = {}
    for argv in DOCCHAIN_COMMANDS:
        result = runner.invoke(app, [*argv, "--help"], env=env)
        helps[argv] = Help(result.exit_code, result.output)
    return helps


def test_the_console_script_is_installed() -> None:
    assert DOCCHAIN.exists(), f"the console script is not installed at {DOCCHAIN}: pip install -e '.[test]'"
    result = subprocess.run(
        [str(DOCCHAIN), "--help"], capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0 and "Usage" in result.stdout, result.stderr[-2000:]


@pytest.mark.parametrize("argv", sorted(DOCCHAIN_COMMANDS), ids=lambda a: " ".join(a) or "(bare)")
def test_documented_docchain_command_exists(argv: tuple[str, ...]) -> None:
    result = _all_helps()[argv]
    where = ", ".join(sorted(set(DOCCHAIN_COMMANDS[argv])))
    assert result.returncode == 0, (
        f"`docchain {' '.join(argv)}` (documented in {where}) does not exist:\n{result.output[-2000:]}"
    )


@pytest.mark.parametrize("argv", sorted(MAKE_COMMANDS), ids=lambda a: " ".join(a) or "(default)")
def test_documented_make_target_exists(argv: tuple[str, ...]) -> None:
    targets = [a for a in argv if not a.startswith("-") and "=" not in a]
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), *targets], capture_output=True, text=True, timeout=60, check=False
    )
    assert "No rule to make target" not in result.stderr, result.stderr
