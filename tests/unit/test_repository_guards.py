"""Guards against merge accidents that break everything at once.

Two branches once declared the same controller-manager flags (argparse refused the duplicate,
so no `navio` command started), and two test modules once shared a basename (pytest's
rootdir-relative imports then refused to collect the suite).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import pytest

from navio.cli.main import _parser

TESTS = Path(__file__).resolve().parents[1]


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_navio_command_builds_its_parser() -> None:
    commands = _subcommands()
    assert {"server", "apiserver", "agent", "controller-manager", "scheduler", "sim",
            "image", "datastore"} <= set(commands)


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_each_command_parses_its_help(command: str, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    with pytest.raises(SystemExit) as done:
        _parser().parse_args([command, "--help"])
    assert done.value.code == 0
    assert command in capsys.readouterr().out


def test_test_modules_have_distinct_basenames() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [n for n, c in names.items() if c > 1] == []
