"""Tasks: the ``@task`` decorator, task config, and loading the module that declares them.

A task is a plain function ``f(ctx, *, param=default, ...)`` marked with ``@task``.
The decorator leaves the function callable as written and attaches a :class:`TaskSpec`
that says what it reads, what it writes, and which config it takes.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import marshal
import os
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FunctionType, ModuleType
from typing import Any, TypeVar

from aeromancy.cache_files import cache_path, write_atomically
from aeromancy.cluster.resources import check_resources
from aeromancy.errors import GraphError, NotFound, UsageError
from aeromancy.names import check_name

SPEC_ATTRIBUTE = "__aeromancy_task__"
DEFAULT_OUTPUT_TYPE = "artifact"
CONFIG_TYPES = (bool, int, float, str, list, dict, type(None))

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class TaskSpec:
    """What one task reads, writes and takes as config; ``fn`` is the undecorated function.

    ``inputs`` are artifact references (``name`` or ``project/name``); ``outputs`` maps each
    output name to its artifact type; ``defaults`` maps each config parameter to its default.
    """

    name: str
    # In Aeromancy's own process, which plans from the module's description and never
    # imports it: :func:`not_imported`.
    fn: Callable[..., Any]
    inputs: tuple[str, ...]
    outputs: Mapping[str, str]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # Project files and directories the task reads by means the child cannot see.
    files: tuple[str, ...] = ()
    # The module defining the function and its file, when known without the function.
    module: str = ""
    module_file: str | None = None
    # Per config parameter whose annotation says which types it takes, those types;
    # None: read the annotations from ``fn`` when asked.
    param_types: Mapping[str, tuple[type, ...]] | None = None
    # What a task run needs of a cluster worker ({"GPU": 1}); local runs ignore it.
    resources: Mapping[str, float] = field(default_factory=dict)

    @property
    def module_name(self) -> str:
        """Return the dotted name of the module that defines the task function."""
        return self.module or str(getattr(self.fn, "__module__", ""))

    def annotated_types(self) -> Mapping[str, tuple[type, ...]]:
        """Return, per parameter whose annotation names config types, those types."""
        if self.param_types is not None:
            return self.param_types
        return annotated_types(self.fn)


def not_imported(*_: Any, **__: Any) -> None:
    """The function of a task known from its description: this process never calls it."""
    raise RuntimeError("a task's function runs in its own process, never in Aeromancy's")


def task(
    inputs: Iterable[str] = (),
    outputs: Mapping[str, str] | Iterable[str] = (),
    files: Iterable[str] = (),
    resources: Mapping[str, float] | None = None,
) -> Callable[[F], F]:
    """Mark a function as a task. ``outputs`` is ``{name: type}`` or a list (type "artifact").

    ``files`` lists project files and directories (relative to the project root) the task
    reads through native code; files it opens from Python are found without declaring.
    ``resources`` names what a run of it needs of a cluster worker (``{"GPU": 1}``, Dask
    worker resources); local runs ignore it.

    Raises InvalidName for a bad input or output name and UsageError when the function's
    parameters after ``ctx`` are not keyword parameters with JSON-like defaults.
    """
    input_refs = tuple(_check_input_ref(ref) for ref in _as_list(inputs, "inputs"))
    if isinstance(outputs, Mapping):
        output_types = {
            check_name(name): check_name(str(kind), "output type") for name, kind in outputs.items()
        }
    else:
        output_types = {check_name(name): DEFAULT_OUTPUT_TYPE for name in _as_list(outputs, "out")}
    declared = tuple(_check_declared_file(path) for path in _as_list(files, "files"))
    needs = check_resources(resources or {}, "@task resources")

    def decorate(fn: F) -> F:
        name = check_name(fn.__name__, "task")
        defaults = config_defaults(fn)
        spec = TaskSpec(name, fn, input_refs, output_types, defaults, declared, resources=needs)
        _claim_name(fn, name)
        setattr(fn, SPEC_ATTRIBUTE, spec)
        return fn

    return decorate


#: Set in a task module's globals: the task names its @task decorations took so far.
_DEFINED = "__aeromancy_task_names__"


def _claim_name(fn: Callable[..., Any], name: str) -> None:
    """Raise GraphError when this module already defined another task called ``name``.

    A second ``def train`` would silently replace the first in the module; the names
    are kept in the module's own globals, so re-importing a module starts afresh.
    Only functions at the module's top level count (a nested one replaces nothing).
    """
    if fn.__qualname__ != fn.__name__:
        return
    taken = fn.__globals__.setdefault(_DEFINED, {})
    if taken.get(name, fn) is not fn:
        raise GraphError(
            f"two tasks are named {name!r} in {fn.__module__} (the first would vanish)",
            "rename one of the functions",
        )
    taken[name] = fn


def _as_list(values: Iterable[str], what: str) -> list[str]:
    if isinstance(values, str):
        raise UsageError(f"@task {what} must be a list of names, not the string {values!r}")
    return list(values)


def _check_input_ref(ref: str) -> str:
    """Return ``ref`` (``name`` or ``project/name``) after checking both parts."""
    project, _, name = ref.rpartition("/")
    if project:
        check_name(project, "project")
    check_name(name)
    return ref


def _check_declared_file(path: str) -> str:
    """Return a declared file path after checking it stays inside the project."""
    parts = path.replace("\\", "/").split("/")
    if not path or path.startswith("/") or ".." in parts:
        raise UsageError(
            f"@task files entry {path!r} must be a path inside the project",
            "give it relative to the project root, e.g. 'data/' or 'conf/x.yaml'",
        )
    return path


def input_name(ref: str) -> str:
    """Return the artifact name of an input reference (``project/name`` -> ``name``)."""
    return ref.rpartition("/")[2]


def config_defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    """Return the task's config: each parameter after ``ctx`` mapped to its default."""
    found = _plain_config_defaults(fn)
    return found if found is not None else _checked_config_defaults(fn)


def _plain_config_defaults(fn: Callable[..., Any]) -> dict[str, Any] | None:
    """Return the config of a plain, valid function read straight from its code object.

    ``inspect.signature`` costs ~40 us a call, which matters for 10,000-task graphs.
    Returns None for anything unusual (wrapped, *args, a missing or odd default), which
    the full check then explains.
    """
    if not isinstance(fn, FunctionType) or hasattr(fn, "__wrapped__"):
        return None
    code = fn.__code__
    if code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS) or code.co_posonlyargcount > 1:
        return None
    count = code.co_argcount
    names = code.co_varnames[: count + code.co_kwonlyargcount]
    positional_defaults = fn.__defaults__ or ()
    if count == 0 or len(positional_defaults) != count - 1:
        return None
    defaults = dict(zip(names[1:count], positional_defaults, strict=True))
    keyword_defaults = fn.__kwdefaults__ or {}
    for name in names[count:]:
        if name not in keyword_defaults:
            return None
        defaults[name] = keyword_defaults[name]
    if not all(isinstance(value, CONFIG_TYPES) for value in defaults.values()):
        return None
    return defaults


def _checked_config_defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    """Return the config via ``inspect.signature``; raise UsageError saying what is wrong."""
    params = list(inspect.signature(fn).parameters.values())
    where = f"task {fn.__name__}"
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not params or params[0].kind not in positional:
        raise UsageError(f"{where} must take the context as its first parameter", "def f(ctx): ...")
    defaults: dict[str, Any] = {}
    for param in params[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise UsageError(
                f"{where}: parameter {param.name!r} cannot be config", "use name=default"
            )
        if param.default is param.empty:
            raise UsageError(f"{where}: config parameter {param.name!r} needs a default value")
        if not isinstance(param.default, CONFIG_TYPES):
            raise UsageError(
                f"{where}: default of {param.name!r} is a {type(param.default).__name__}",
                "config defaults are bool, int, float, str, list, dict or None",
            )
        defaults[param.name] = param.default
    return defaults


@functools.cache
def annotated_types(fn: Callable[..., Any]) -> dict[str, tuple[type, ...]]:
    """Return, per parameter of ``fn`` whose annotation names config types, those types.

    ``float`` takes ints too (Python's numeric tower). An annotation that does not
    evaluate, or that allows anything (``Any``, a class), is left out: the parameter's
    default then says which type it takes.
    """
    hints = getattr(fn, "__annotations__", None) or {}
    # Plain classes (``int``, ``float``) mean what they say; anything else (a string
    # under ``from __future__ import annotations``, ``int | None``, ``Annotated``) is
    # left to get_type_hints, which costs ~20 us a function: 1 s at 50,000 tasks.
    if not all(isinstance(value, type) for key, value in hints.items() if key != "return"):
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # an annotation that does not evaluate says nothing usable
            return {}
    found = {}
    for name, annotation in hints.items():
        allowed = types_of(annotation)
        if name != "return" and allowed is not None:
            found[name] = allowed
    return found


#: The config types, in the order raw ``--set`` text is tried: bool before int (True is
#: an int), str last.
TYPE_ORDER: tuple[type, ...] = (type(None), bool, int, float, list, dict, str)


def types_of(annotation: Any) -> tuple[type, ...] | None:
    """Return the config types an annotation allows, or None for 'anything'."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        found: list[type] = []
        for member in typing.get_args(annotation):
            inner = types_of(member)
            if inner is None:
                return None
            found.extend(inner)
        return tuple(found)
    base = origin or annotation
    if base is None or base is type(None):
        return (type(None),)
    if base is float:
        return (float, int)
    if isinstance(base, type) and base in TYPE_ORDER:
        return (base,)
    return None


def _is_path(tasks: str, root: Path) -> bool:
    return tasks.endswith(".py") or "/" in tasks or (root / tasks).is_file()


# Project roots whose modules this process imported (more than one under tests).
_loaded_roots: set[str] = set()


def _forget_project_modules(root: Path) -> None:
    """Drop modules imported from any project root, so edits and other projects are seen.

    Without this a second load in one process would reuse the first ``helpers`` module.
    """
    _loaded_roots.add(str(root))
    prefixes = tuple(prefix + os.sep for prefix in _loaded_roots)
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.startswith(prefixes):
            del sys.modules[name]


def _put_first_on_path(directories: list[Path]) -> None:
    for directory in reversed(directories):
        entry = str(directory)
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)


def import_path(root: Path) -> list[Path]:
    """Return the directories project modules are imported from: ``root`` and ``root/src``."""
    return [root, root / "src"]


def load_module(tasks: str, root: Path) -> ModuleType:
    """Return the task module ``tasks``: a path relative to ``root`` or a dotted module name.

    Raises NotFound when there is no such file or module.
    """
    # Python trusts a .pyc whose source has the same mtime (whole seconds) and size, so
    # an edit within a second of the last load could run the old code: no .pyc is
    # written while project modules load.
    previous = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        return _load_module(tasks, root)
    finally:
        sys.dont_write_bytecode = previous


def _load_module(tasks: str, root: Path) -> ModuleType:
    root = root.resolve()
    _forget_project_modules(root)
    _put_first_on_path(import_path(root))
    if not _is_path(tasks, root):
        try:
            return importlib.import_module(tasks)
        except ModuleNotFoundError as exc:
            if exc.name and tasks.startswith(exc.name):
                raise NotFound(f"cannot import task module {tasks!r}: {exc}") from exc
            raise _load_error(tasks, exc) from exc
        except Exception as exc:
            raise _load_error(tasks, exc) from exc
    path = (root / tasks).resolve()
    if not path.is_file():
        raise NotFound(
            f"task module {tasks} not found under {root}",
            "pass a path or dotted module, set [tool.aeromancy] tasks, "
            "or scaffold a project with `aeromancy init`",
        )
    _put_first_on_path([path.parent])
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    if module_spec is None or module_spec.loader is None:
        raise NotFound(f"task module {tasks} cannot be loaded as Python", "name a .py file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[path.stem] = module
    try:
        code = compiled(path)
        exec(code, module.__dict__)  # what the loader's exec_module does, with this code
    except Exception as exc:
        del sys.modules[path.stem]
        raise _load_error(tasks, exc) from exc
    return module


def compiled(path: Path) -> CodeType:
    """Return the code of the module file ``path``, compiled once per distinct source.

    Compiling a module of 50,000 tasks takes seconds. Python's own .pyc files are
    not used (an edit within the same second could run stale code); this cache is
    keyed by the sha256 of the source, its path and the interpreter's bytecode
    version, so it can never return code of other bytes.
    """
    source = path.read_bytes()
    identity = b"\0".join([source, str(path).encode(), importlib.util.MAGIC_NUMBER])
    cached = cache_path("code", f"{hashlib.sha256(identity).hexdigest()}.marshal")
    try:
        code = marshal.loads(cached.read_bytes())
        if isinstance(code, CodeType):
            return code
    except (OSError, ValueError, EOFError, TypeError):
        pass
    code = compile(source, str(path), "exec", dont_inherit=True)
    write_atomically(cached, marshal.dumps(code))
    return code


def _load_error(tasks: str, exc: Exception) -> UsageError:
    """Return the one-line refusal for a task module that raised while being imported."""
    return UsageError(
        f"cannot load task module {tasks}: {type(exc).__name__}: {exc}",
        "fix the module; --debug shows the traceback",
    )


def collect_tasks(module: ModuleType) -> dict[str, TaskSpec]:
    """Return the tasks a module defines or imports, by name (empty when there are none).

    Raises GraphError when two different functions share one task name.
    """
    specs: dict[str, TaskSpec] = {}
    for value in vars(module).values():
        spec = getattr(value, SPEC_ATTRIBUTE, None)
        if not isinstance(spec, TaskSpec):
            continue
        other = specs.get(spec.name)
        if other is not None and other.fn is not spec.fn:
            raise GraphError(f"two tasks are named {spec.name!r}", "rename one of the functions")
        specs[spec.name] = spec
    return specs


def load_tasks(tasks: str, root: Path) -> dict[str, TaskSpec]:
    """Return the tasks of the module ``tasks`` under ``root``. Raises NotFound when it has none."""
    specs = collect_tasks(load_module(tasks, root))
    if not specs:
        raise NotFound(f"{tasks} defines no tasks", "decorate functions with @aeromancy.task")
    return specs
