"""Every command's --help: each flag has a help line, valued flags show their default, and
on / off switches show none (``--no-x (default: True)`` read backwards)."""
import argparse
import importlib
import os
import pkgutil
import subprocess
import sys

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


@pytest.mark.parametrize("script, flags, module", [
    ("oneshot-train", ["--num-epochs", "0"], "train_imagenet.py"),
    ("oneshot-rank-check", ["--supernet-params", "missing.params", "--benchmark", "x.json"],
     "rank_check"),
])
def test_usage_and_errors_name_the_installed_command(script, flags, module, tmp_path):
    path = os.path.join(os.path.dirname(sys.executable), script)
    if not os.path.isfile(path):
        pytest.skip("%s is not installed in this environment" % script)
    usage = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=300,
                           cwd=str(tmp_path))
    assert usage.returncode == 0 and usage.stdout.startswith("usage: %s " % script)
    bad = subprocess.run([path] + flags, capture_output=True, text=True, timeout=300,
                         cwd=str(tmp_path))
    lines = [l for l in bad.stderr.splitlines() if "error:" in l]
    assert bad.returncode == 2 and len(lines) == 1 and lines[0].startswith(script + ": error:")
    assert module not in lines[0]
