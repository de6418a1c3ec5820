"""Placeholder until its owner lands the commands of this module."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
