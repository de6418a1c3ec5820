"""The local cache of run record summaries: one JSON line per run, read line by line.

A planning pass of 50,000 tasks reads 50,000 summaries. Read as one JSON document,
the file's bytes, their decoded text and every parsed summary were alive at once;
a thousand lines at a time only those are. Values that most summaries repeat (the code identity
of a module, the environment key, the group) are shared between them as they are
read: summaries are read-only, and 50,000 copies of one code identity cost about
40 MB.

The file: a first line ``{"format": N}``, then one ``[run_id, summary]`` line per run.
A file of another format, or one that does not parse, reads as empty (and is rewritten).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from aeromancy.cache_files import write_atomically

#: 2: with the files a run read; 3: JSON lines.
SUMMARY_FORMAT = 3
#: String fields whose values repeat across runs, shared rather than copied.
#: Lines parsed at once: small next to 50,000, large enough to share keys.
CHUNK_LINES = 1000
_SHARED_STRINGS = ("task", "status", "environment_key", "git_commit", "namespace", "group")


def read_summaries(path: Path) -> dict[str, dict[str, Any]]:
    """Return the cached summaries by run id ({} when the file is missing or unreadable)."""
    summaries: dict[str, dict[str, Any]] = {}
    shared: dict[Any, Any] = {}
    try:
        with path.open("rb") as lines:
            header = json.loads(lines.readline())
            if not isinstance(header, dict) or header.get("format") != SUMMARY_FORMAT:
                return {}
            for chunk in _chunks(lines):
                for run_id, summary in chunk:
                    summaries[str(run_id)] = _shared(summary, shared)
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return {}
    return summaries


def _chunks(lines: Iterable[bytes]) -> Iterator[list[Any]]:
    """Yield the lines' values, CHUNK_LINES at a time, each chunk parsed as one document.

    One document per chunk, not per line: the parser makes one copy of each key per
    document (a line each would cost a copy of every key for every summary).
    """
    batch: list[bytes] = []
    for line in lines:
        batch.append(line.rstrip(b"\n"))
        if len(batch) == CHUNK_LINES:
            yield json.loads(b"[" + b",".join(batch) + b"]")
            batch = []
    if batch:
        yield json.loads(b"[" + b",".join(batch) + b"]")


def write_summaries(path: Path, summaries: Mapping[str, Mapping[str, Any]]) -> None:
    """Write the summaries (best effort: the cache is only an optimisation)."""
    encode = json.JSONEncoder(separators=(",", ":")).encode
    lines = [encode({"format": SUMMARY_FORMAT})]
    lines += [encode([run_id, summary]) for run_id, summary in summaries.items()]
    write_atomically(path, ("\n".join(lines) + "\n").encode())


def _shared(summary: dict[str, Any], shared: dict[Any, Any]) -> dict[str, Any]:
    """Return ``summary`` with its code identity and environment key replaced by the
    first equal ones read (the two values most summaries repeat, and the largest)."""
    key = summary.get("environment_key")
    if key.__class__ is str:
        summary["environment_key"] = shared.setdefault(key, key)
    code = summary.get("code")
    if code.__class__ is dict:
        known = shared.setdefault(("code", code.get("digest")), code)
        if known is not code and known == code:
            summary["code"] = known
    return summary
