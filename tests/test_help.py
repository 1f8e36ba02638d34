"""Every command's --help: each flag has a help line, valued flags show their default, and
on / off switches show none (``--no-x (default: True)`` read backwards)."""
import argparse
import importlib
import pkgutil

import pytest

import oneshot_nas.cli as cli

COMMANDS = sorted(m.name for m in pkgutil.iter_modules(cli.__path__)
                  if hasattr(importlib.import_module("oneshot_nas.cli." + m.name),
                             "build_parser"))


def test_every_command_has_a_parser():
    # the installed commands (pyproject's [project.scripts]) all build their parser in one place
    assert len(COMMANDS) == 14 and "demo" in COMMANDS and "train_imagenet" in COMMANDS


@pytest.mark.parametrize("name", COMMANDS)
def test_every_flag_has_help_and_valued_flags_show_their_default(name):
    parser = importlib.import_module("oneshot_nas.cli." + name).build_parser()
    flags = [a for a in parser._actions
             if a.option_strings and not isinstance(a, argparse._HelpAction)]
    assert [a.option_strings[-1] for a in flags if not a.help] == []
    text = parser.format_help()
    formatter = parser._get_formatter()
    for action in flags:
        shown = formatter._get_help_string(action)
        if action.nargs == 0:
            assert "%(default)" not in shown, action.option_strings
        elif action.default is not argparse.SUPPRESS:
            # the formatter's "(default: ...)", or the help's own words for a default that
            # depends on something else (the data set, another flag)
            assert "%(default)" in shown or "(default" in shown, action.option_strings
    assert "(default: True)" not in text and "(default: False)" not in text
