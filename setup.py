"""Kept for tools that still run ``python setup.py ...``: the package is described in
pyproject.toml (PEP 621 metadata, extras, console scripts; PEP 660 editable installs)."""
from setuptools import setup

setup()
