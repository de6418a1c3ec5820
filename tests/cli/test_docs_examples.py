"""The command examples in README.md and docs/*.md are run, and their output compared.

A fenced block whose first line is ``$ cd examples/quickstart`` is a transcript: each
``$ COMMAND`` line is run in order, in a fresh copy of the quickstart with a fresh
store, and must exit 0; when output lines follow it in the block, the command's stdout
must equal them, with run ids, digests and timestamps replaced by placeholders on
both sides. So the documented tables, trees and graphs cannot drift from the code.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
START = "$ cd examples/quickstart"
AEROMANCY = str(Path(sys.executable).parent / "aeromancy")
PLACEHOLDERS = [
    (re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{8}\b"), "RUN-ID"),
    (re.compile(r"\bsha256:[0-9a-f]{12,64}\b"), "sha256:DIGEST"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\b"), "TIME"),
]


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


@dataclass
class Transcript:
    where: str
    steps: list[Step]


def fenced_blocks(text: str) -> list[tuple[int, list[str]]]:
    """Return (line number, lines) of every fenced block, its indentation removed."""
    blocks, current, start, indent = [], None, 0, 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if current is None and stripped.startswith("```"):
            current, start, indent = [], number, len(line) - len(line.lstrip())
        elif current is not None and stripped == "```":
            blocks.append((start, current))
            current = None
        elif current is not None:
            current.append(line[indent:])
    return blocks


def transcripts() -> list[Transcript]:
    found = []
    for document in DOCUMENTS:
        for number, lines in fenced_blocks(document.read_text(encoding="utf-8")):
            if not lines or lines[0].strip() != START:
                continue
            steps: list[Step] = []
            for line in lines[1:]:
                if line.startswith("$ "):
                    steps.append(Step(line[2:]))
                elif line.strip() and steps:
                    steps[-1].expected.append(line.rstrip())
            found.append(Transcript(f"{document.relative_to(REPO)}:{number}", steps))
    return found


def normalised(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        text = line
        for pattern, placeholder in PLACEHOLDERS:
            text = pattern.sub(placeholder, text)
        out.append(text.rstrip())
    return [text for text in out if text]


def argv_of(command: str) -> list[str]:
    words = shlex.split(command, comments=True)
    assert words[0] in ("aeromancy", "../../.venv/bin/aeromancy"), (
        f"not an aeromancy command: {command}"
    )
    return [AEROMANCY, *words[1:]]


ALL = transcripts()


def test_the_readme_and_the_tasks_page_have_transcripts() -> None:
    places = {transcript.where.split(":")[0] for transcript in ALL}
    assert {"README.md", "docs/tasks.md"} <= places
    assert sum(bool(step.expected) for transcript in ALL for step in transcript.steps) >= 5


@pytest.mark.parametrize("transcript", ALL, ids=[transcript.where for transcript in ALL])
def test_transcript_matches_what_the_commands_print(
    transcript: Transcript, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "quickstart"
    shutil.copytree(REPO / "examples" / "quickstart", project)
    monkeypatch.setenv("AEROMANCY_STORE", str(tmp_path / "store"))
    for step in transcript.steps:
        result = subprocess.run(
            argv_of(step.command), cwd=project, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{transcript.where}: $ {step.command}\n{result.stderr}"
        if step.expected:
            actual = normalised(result.stdout.splitlines())
            assert actual == normalised(step.expected), f"{transcript.where}: $ {step.command}"
