"""The task module's description, from the project's interpreter, cached by code identity.

Aeromancy's own process never imports the task module: the project's dependencies
(pandas, torch, ...) need not be importable in it, and a run where nothing changed costs
no heavy imports. A child process of the project's interpreter, the one tasks run in,
imports the module and prints what planning needs (:mod:`aeromancy.execution.child.describe`).

The description is cached under ``<cache dir>/descriptions/``, keyed by what can change
it (:func:`description_key`): the task module's source, the interpreter and Aeromancy
itself. An entry is trusted only while the project files the import actually loaded or
read still have their digests (the modules it imports among them), and the directories on the
interpreter's import path (site-packages, where installing a package changes the
mtime) still have their mtimes. An entry that cannot be read is ignored and rebuilt.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aeromancy
from aeromancy import errors
from aeromancy.cache_files import cache_path, write_atomically
from aeromancy.errors import AeromancyError, UsageError
from aeromancy.execution.child.protocol import PROTOCOL
from aeromancy.execution.interpreter import project_python
from aeromancy.file_deps import FileDigests
from aeromancy.fingerprint import CodeScanner, task_module_search_path
from aeromancy.tasks import TYPE_ORDER, TaskSpec, import_path, not_imported

DESCRIBE_MODULE = "aeromancy.execution.child.describe"
#: Bump when the description's form or meaning changes: older entries then miss.
FORMAT = 3
#: Aeromancy's files the description depends on (a checkout changes without a new version).
_OWN_FILES = (
    "tasks.py",
    "names.py",
    "errors.py",
    "cache_files.py",
    "settings.py",
    "cluster/resources.py",
    "execution/child/describe.py",
    "execution/child/reads.py",
    "execution/child/protocol.py",
)
_TYPES = {kind.__name__: kind for kind in TYPE_ORDER}
log = logging.getLogger(__name__)


class ChildTraceback(Exception):
    """The traceback of an error raised in the describing child (shown under --debug)."""


def describe_tasks(tasks: str, root: Path, python: str | None = None) -> dict[str, TaskSpec]:
    """Return the tasks of the task module ``tasks`` under ``root``, by name.

    Raises the error the module's loading raised (UsageError and subclasses, exit 2).
    """
    root = root.resolve()
    python = python or project_python(root)
    module = find_module_file(tasks, root)
    key = description_key(tasks, root, python, module)
    specs = read_entry(key, root)
    if specs is not None:
        log.debug("task module %s: description from the cache (%s)", tasks, _entry_path(key))
        return specs
    started = time.monotonic()
    document = run_describe(
        tasks, root, python, meanwhile=lambda: _scan_imports(module, tasks, root)
    )
    specs = decode_tasks(document["tasks"], document["task_modules"])
    entry = make_entry(key, root, document)
    write_atomically(_entry_path(key), json.dumps(entry, separators=(",", ":")).encode())
    took = time.monotonic() - started
    log.debug("task module %s: described by %s in %.2f s", tasks, python, took)
    return specs


def description_key(tasks: str, root: Path, python: str, module: Path | None) -> str:
    """Return the hex digest of everything that can change the module's description
    (``module``: the task module's file, from :func:`find_module_file`)."""
    code = None if module is None else hashlib.sha256(module.read_bytes()).hexdigest()
    document = {
        "format": FORMAT,
        "aeromancy": [aeromancy.__version__, *_own_files_state()],
        "python": [python, *_state(Path(python).resolve())],
        "pythonpath": os.environ.get("PYTHONPATH", ""),
        "tasks": tasks,
        "root": str(root),
        "code": code,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _scan_imports(module: Path | None, tasks: str, root: Path) -> None:
    """Read which project modules the task module (file ``module``) imports, into the
    on-disk cache that planning's code identities read next (so that it runs beside the
    child's import)."""
    if module is not None:
        search = task_module_search_path(root, tasks)
        CodeScanner(root, search, cache_path()).identity(module.resolve())


def find_module_file(tasks: str, root: Path) -> Path | None:
    """Return the file of the task module ``tasks`` (a path or a dotted project module),
    or None when it is not a file of the project (an installed module, or none)."""
    if tasks.endswith(".py") or "/" in tasks or (root / tasks).is_file():
        path = root / tasks
        return path if path.is_file() else None
    relative = Path(*tasks.split("."))
    for directory in import_path(root):
        for candidate in (directory / f"{relative}.py", directory / relative / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _state(path: Path) -> list[int]:
    try:
        info = path.stat()
    except OSError:
        return []
    return [info.st_size, info.st_mtime_ns, info.st_ino]


def _own_files_state() -> list[list[int]]:
    package = Path(aeromancy.__file__).parent
    return [_state(package / name) for name in _OWN_FILES]


def _entry_path(key: str) -> Path:
    return cache_path("descriptions", f"{key}.json")


def read_entry(key: str, root: Path) -> dict[str, TaskSpec] | None:
    """Return the tasks of the cached entry under ``key`` while it still holds, else None."""
    try:
        entry = json.loads(_entry_path(key).read_bytes())
        if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry["key"] != key:
            return None
        specs = decode_tasks(entry["tasks"], entry["task_modules"])
        for directory, mtime_ns in entry["path"].items():
            if os.stat(directory).st_mtime_ns != mtime_ns:
                return None
        files = {**entry["modules"], **entry["read"]}
        if FileDigests(root).changed(files, ()) is not None:
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None  # an entry that does not make sense is as good as none
    return specs


def make_entry(key: str, root: Path, document: Mapping[str, Any]) -> dict[str, Any]:
    """Return the cache entry of a fresh description: it, and what it depends on."""
    digests = FileDigests(root)
    directories = {}
    for directory in document["path"]:
        try:
            directories[directory] = os.stat(directory).st_mtime_ns
        except OSError:
            continue
    return {
        "format": FORMAT,
        "key": key,
        "tasks": document["tasks"],
        "task_modules": document["task_modules"],
        "modules": digests.of(document["modules"]),
        "read": digests.of(document["read"]),
        "path": directories,
    }


def decode_tasks(entries: list[list[Any]], modules: list[list[Any]]) -> dict[str, TaskSpec]:
    """Return the specs of a description's task entries, by name (fn: ``not_imported``).

    Each entry is ``[name, module index, inputs, outputs, defaults, files, param types]``
    and the worker resources when the task declares any,
    the module index pointing into ``modules``, a list of ``[dotted name, file]``.
    Raises KeyError, TypeError, ValueError or IndexError for an entry of another shape.
    """
    specs = {}
    for name, where, inputs, outputs, defaults, files, types, *more in entries:
        module, module_file = modules[where]
        (resources,) = more or [{}]
        if not all(isinstance(found, dict) for found in (outputs, defaults, resources)):
            raise TypeError("outputs, defaults and resources are objects")
        spec = TaskSpec(
            str(name),
            not_imported,
            _strings(inputs),
            outputs,
            defaults,
            _strings(files),
            module=str(module),
            module_file=None if module_file is None else str(module_file),
            param_types={param: _types(tuple(kinds)) for param, kinds in types.items()},
            resources=resources,
        )
        specs[spec.name] = spec
    return specs


def _strings(values: list[str]) -> tuple[str, ...]:
    if not isinstance(values, list):
        raise TypeError("expected a list")
    return tuple(values)


@functools.cache
def _types(names: tuple[str, ...]) -> tuple[type, ...]:
    return tuple(_TYPES[name] for name in names)


def run_describe(
    tasks: str, root: Path, python: str, meanwhile: Callable[[], None] = lambda: None
) -> dict[str, Any]:
    """Return the description document of a child of ``python``; raise what loading raised.

    ``meanwhile`` runs in this process while the child imports the module.
    """
    argv = [python, "-m", DESCRIBE_MODULE, tasks, str(root)]
    with child_import_path() as shim:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [shim, env.get("PYTHONPATH", "")]))
        try:
            child = subprocess.Popen(
                argv, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
            )
        except OSError as exc:
            raise UsageError(
                f"cannot run the project's python {python}: {exc}",
                "check AEROMANCY_PROJECT_PYTHON, .pdm-python or .venv",
            ) from exc
        try:
            meanwhile()
            stdout, _ = child.communicate()
        except BaseException:  # an error or ^C here: the child goes too, as with run()
            child.kill()
            child.communicate()
            raise
    try:
        document = json.loads(stdout)
    except ValueError:
        document = None
    if not isinstance(document, dict) or document.get("protocol") != PROTOCOL:
        raise UsageError(
            f"cannot load task module {tasks}: {python} {_how_it_ended(child.returncode)}"
            " while importing it",
            "fix the module; its output is above",
        )
    if not document.get("ok"):
        raise _error_of(document.get("error") or {})
    document["path"] = [entry for entry in document["path"] if entry != os.path.realpath(shim)]
    return document


def _how_it_ended(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _error_of(error: Mapping[str, Any]) -> AeromancyError:
    """Return the error the child reported, as the same class of :mod:`aeromancy.errors`."""
    kind = getattr(errors, str(error.get("kind")), None)
    if not (isinstance(kind, type) and issubclass(kind, AeromancyError)):
        kind = UsageError
    found = kind(str(error.get("message", "cannot load the task module")), error.get("hint"))
    found.__cause__ = ChildTraceback(str(error.get("traceback", "")))
    return found


@contextmanager
def child_import_path() -> Iterator[str]:
    """Yield a directory holding only a link to this ``aeromancy`` package.

    First on the child's ``PYTHONPATH``, it makes Aeromancy importable without any of
    its dependencies. Kept in the cache directory, one per package location, so that a
    run makes none; a temporary one when the cache directory is not writable.
    """
    package = Path(aeromancy.__file__).resolve().parent
    name = hashlib.sha256(str(package).encode()).hexdigest()[:16]
    shim = cache_path("child-path", name)
    if (shim / "aeromancy").resolve() == package:
        yield str(shim)
        return
    with tempfile.TemporaryDirectory(prefix="aeromancy-child-path-") as temporary:
        (Path(temporary) / "aeromancy").symlink_to(package, target_is_directory=True)
        _keep(Path(temporary), shim)
        yield temporary


def _keep(made: Path, shim: Path) -> None:
    """Copy the link ``made`` holds into ``shim`` for later runs (best effort)."""
    try:
        shim.mkdir(parents=True, exist_ok=True)
        link = shim / f".aeromancy.{os.getpid()}"
        link.symlink_to((made / "aeromancy").resolve(), target_is_directory=True)
        os.replace(link, shim / "aeromancy")
    except OSError:
        return
