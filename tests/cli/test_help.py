"""`--help` at every level of `manage.py workers` teaches the command: a description, examples,
help for every argument, and the defaults."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from connections.management.commands.workers import Command

from ..conftest import ROOT, subprocess_env
from .conftest import PUBLIC_URL


def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...]
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _walk(child, (*path, name))
    return found


# Discovered, not listed: a subcommand added later is held to the same standard.
PARSERS = _walk(Command().create_parser("manage.py", "workers"), ("workers",))


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_every_subcommand_is_discovered():
    paths = {" ".join(path) for path, _ in PARSERS}
    assert {"workers", "workers deploy", "workers env set", "workers oauth start", "workers exec"} <= paths
    assert {"workers sync run", "workers runs", "workers keys rotate", "workers serve", "workers setup"} <= paths


@pytest.mark.parametrize(("path", "parser"), PARSERS, ids=[" ".join(path) for path, _ in PARSERS])
def test_help_has_a_description_examples_argument_help_and_defaults(path, parser):
    text = parser.format_help()
    assert parser.description, f"`{' '.join(path)} --help` has no description"
    assert "Example" in text, f"`{' '.join(path)} --help` has no example"
    flat = _flat(text)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        name = action.metavar or action.dest
        assert action.help, f"`{' '.join(path)}`: {name} has no help"
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert f"(default: {action.default})" in flat, f"`{' '.join(path)}`: {name}'s default is not shown"


def test_help_in_a_real_process():
    env = subprocess_env(PUBLIC_URL)
    proc = subprocess.run(
        [sys.executable, "manage.py", "workers", "exec", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    flat = _flat(proc.stdout)
    assert "Examples:" in proc.stdout
    assert "manage.py workers exec getMe" in flat
    assert "(default: 600)" in flat and "(default: {})" in flat
    assert "TOOL the tool's key" in flat
