"""``python -m aeromancy.execution.child.describe TASKS ROOT``: describe the task graph.

Run in the project's interpreter (the one tasks run in), so that Aeromancy's own
process never imports the task module. It imports the module, collects its tasks and
prints one JSON document on stdout (what the module prints while imported goes to
stderr instead):

- ``{"protocol": 1, "ok": true, "tasks": [...], "task_modules": [...], "modules": [...],
  "read": [...], "path": [...]}``: one entry per task, ``[name, module index, inputs,
  outputs, config defaults, declared files, annotated parameter types]`` and the worker
  resources if any (a list, not
  an object: 3.9 MB instead of 11.4 MB for 50,000 tasks), the module index pointing into
  ``task_modules`` (``[dotted name, file]``); then the project files of the modules it
  imported and the other project files it read (relative paths), and the directories
  of the interpreter's import path outside the project;
- ``{"protocol": 1, "ok": false, "error": {"kind", "message", "hint", "traceback"}}``:
  loading failed; ``kind`` names the class in :mod:`aeromancy.errors`.

Stdlib only, like the rest of the child side.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from aeromancy.errors import AeromancyError, UsageError
from aeromancy.execution.child.protocol import MAX_ERROR_CHARS, PROTOCOL
from aeromancy.execution.child.reads import ReadRecorder
from aeromancy.tasks import TaskSpec, load_tasks

CONFIG_HINT = "config defaults are bool, int, float, str, list, dict or None, nested likewise"


def main(argv: list[str] | None = None) -> NoReturn:
    """Describe the module named on the command line; exit 0 after printing the result."""
    tasks, root = (sys.argv[1:] if argv is None else argv)[:2]
    result = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the module's own prints must not mix with the description
    document = {"protocol": PROTOCOL, **describe(tasks, Path(root))}
    try:
        text = json.dumps(document, separators=(",", ":"))
    except (TypeError, ValueError) as exc:  # a default that JSON cannot hold
        error = UsageError(f"cannot describe task module {tasks}: {exc}", CONFIG_HINT)
        text = json.dumps({"protocol": PROTOCOL, "ok": False, "error": _error(error)})
    result.write(text)
    result.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(0)  # threads the module started must not keep this process


def describe(tasks: str, root: Path) -> dict[str, Any]:
    """Return the description document of the task module ``tasks`` under ``root``."""
    reads = ReadRecorder()
    sys.addaudithook(reads.hook)
    reads.active = True
    try:
        specs = load_tasks(tasks, root)
    except AeromancyError as exc:
        return {"ok": False, "error": _error(exc)}
    except BaseException as exc:  # SystemExit and KeyboardInterrupt at import time too
        wrapped = UsageError(
            f"cannot load task module {tasks}: {type(exc).__name__}: {exc}",
            "fix the module; --debug shows the traceback",
        )
        return {"ok": False, "error": _error(wrapped)}
    finally:
        reads.active = False
    where = str(root.resolve())
    modules: dict[str, int] = {}
    return {
        "ok": True,
        "tasks": [encode_spec(spec, modules) for spec in specs.values()],
        "task_modules": [[name, _module_file(name)] for name in modules],
        "modules": project_modules(where),
        "read": reads.dependencies(where, []),
        "path": import_directories(where),
    }


def encode_spec(spec: TaskSpec, modules: dict[str, int]) -> list[Any]:
    """Return the JSON form of one task (everything planning needs but the function):
    ``[name, module index, inputs, outputs, defaults, files, param types]``, then the
    worker resources when it declares any; ``modules``
    maps each defining module's name to its index, in order of first use."""
    where = modules.setdefault(spec.module_name, len(modules))
    entry = [
        spec.name,
        where,
        list(spec.inputs),
        dict(spec.outputs),
        dict(spec.defaults),
        list(spec.files),
        _type_names(spec.annotated_types()),
    ]
    if spec.resources:
        entry.append(dict(spec.resources))
    return entry


def _module_file(name: str) -> str | None:
    path = getattr(sys.modules.get(name), "__file__", None)
    return os.path.realpath(path) if isinstance(path, str) else None


def _type_names(found: Mapping[str, tuple[type, ...]]) -> dict[str, list[str]]:
    return {name: [kind.__name__ for kind in kinds] for name, kinds in found.items()}


def project_modules(root: str) -> list[str]:
    """Return the files of every imported module that lies in the project, relative, sorted.

    Files under the interpreter's prefixes (a project's in-tree ``.venv``) do not count.
    """
    skip = [os.path.realpath(p) + os.sep for p in {sys.prefix, sys.exec_prefix}]
    found = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            continue
        real = os.path.realpath(path)
        if real.startswith(root + os.sep) and not any(real.startswith(s) for s in skip):
            found.add(Path(os.path.relpath(real, root)).as_posix())
    return sorted(found)


def import_directories(root: str) -> list[str]:
    """Return the existing directories on ``sys.path`` outside the project, in order.

    Installing or removing a package adds or removes entries in one of them, which
    changes its mtime; the parent compares those to trust a cached description.
    """
    found: dict[str, None] = {}
    for entry in _entries(sys.path):
        real = os.path.realpath(entry)
        if os.path.isdir(real) and real != root and not real.startswith(root + os.sep):
            found[real] = None
    return list(found)


def _entries(path: Iterable[str]) -> Iterable[str]:
    return (entry for entry in path if entry and not entry.endswith(".zip"))


def _error(exc: AeromancyError) -> dict[str, Any]:
    return {
        "kind": type(exc).__name__,
        "message": exc.message,
        "hint": exc.hint,
        "traceback": traceback.format_exc()[-MAX_ERROR_CHARS:],
    }


if __name__ == "__main__":
    main()
