"""Why a task will run (or ran): what differs from the run it is compared against.

The run compared against is the most recent successful run of the same task with the
same config, or, when the config is new, the most recent run of the task (and the
config keys that differ are named). So a comment-only edit after a ``--set`` says
``code pipeline.py changed``, never ``config``. Reasons, joined by ``; ``:

``never ran``, ``config lr 0.1 -> 0.01``, ``code pipeline.py changed``,
``input dataset v1 -> v2``, ``file data/raw.csv changed``, ``environment changed``,
``outputs gone from the store``; the executor adds ``forced``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aeromancy.fingerprint import CodeIdentity

NEVER_RAN = "never ran"
FORCED = "forced"
OUTPUTS_GONE = "outputs gone from the store"
MAX_NAMED = 3  # config keys, code files, inputs named before "and N more"


@dataclass(frozen=True)
class Current:
    """What the task would run with now: code, config, input digests (and labels)."""

    code: CodeIdentity
    config: Mapping[str, Any]
    inputs: Mapping[str, str]
    labels: Mapping[str, str]
    environments: Collection[str]


def why_stale(runs: Sequence[Mapping[str, Any]], now: Current, changed_file: str | None) -> str:
    """Return why the task must run, given its successful runs, newest first."""
    if not runs:
        return NEVER_RAN
    same_config = [r for r in runs if r.get("config") == dict(now.config)]
    base = same_config[0] if same_config else runs[0]
    reasons = [] if same_config else [_config_change(base.get("config") or {}, now.config)]
    reasons += _code_change(base.get("code") or {}, now.code)
    reasons += _input_changes(base.get("inputs") or (), now)
    if changed_file is not None:
        reasons.append(f"file {changed_file} changed")
    if not reasons and now.environments and base.get("environment_key") not in now.environments:
        reasons.append("environment changed")
    return "; ".join(reasons) if reasons else OUTPUTS_GONE


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _named(items: list[str]) -> str:
    more = len(items) - MAX_NAMED
    return ", ".join(items[:MAX_NAMED]) + (f" and {more} more" if more > 0 else "")


def _config_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    changes = []
    for key in sorted({*before, *after}):
        if key not in before:
            changes.append(f"{key} (new) {_show(after[key])}")
        elif key not in after:
            changes.append(f"{key} {_show(before[key])} (gone)")
        elif before[key] != after[key]:
            changes.append(f"{key} {_show(before[key])} -> {_show(after[key])}")
    return "config " + _named(changes)


def _code_change(recorded: Mapping[str, Any], code: CodeIdentity) -> list[str]:
    if recorded.get("digest") == code.digest:
        return []
    before = recorded.get("digests")
    if not isinstance(before, Mapping):
        return ["code changed"]
    now = dict(code.file_digests)
    changed = sorted(f for f in {*before, *now} if before.get(f) != now.get(f))
    return [f"code {_named(changed)} changed"] if changed else ["code changed"]


def _input_changes(recorded: Sequence[Mapping[str, Any]], now: Current) -> list[str]:
    before = {str(entry.get("ref")): entry for entry in recorded}
    changes = []
    for ref, digest in sorted(now.inputs.items()):
        entry = before.get(ref)
        if entry is None:
            changes.append(f"input {ref} (new)")
        elif entry.get("digest") != digest:
            label = now.labels.get(ref)
            old = entry.get("label")
            changes.append(
                f"input {ref} {old} -> {label}" if label and old else f"input {ref} changed"
            )
    return [_named(changes)] if changes else []
