"""The docs site builds with ``mkdocs build --strict`` and its CLI reference lists every command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aeromancy.cli import COMMANDS

REPO = Path(__file__).resolve().parents[2]


def test_the_site_builds_strictly_with_every_command_in_its_reference(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the docs dependency group is not installed")
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stderr
    reference = (site / "cli" / "index.html").read_text(encoding="utf-8")
    headings = set(re.findall(r'<h3 id="([a-z-]+)"', reference))
    assert set(COMMANDS) <= headings
    assert "A tracked run (the default) needs:" in reference  # run --help, from click
