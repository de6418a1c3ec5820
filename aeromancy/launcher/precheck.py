"""Checks of a tracked run's request on the host, before any image is built.

The host may lack the project's dependencies, so the task module is not imported here:
its ``@task`` declarations are read from the source with :mod:`ast`, following
``from module import name`` into the project's own modules. What is read is used only
to refuse what is certainly wrong (a ``--set`` or ``--only`` naming no task, a parameter
a task does not take, a value that does not parse, a missing module file, a syntax
error), with the same messages the run inside the container would give, and host
paths. A module too dynamic to read (tasks made by calling ``task(...)`` as a function,
star imports from outside the project, module ``__getattr__``) is left to the check
inside the container.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aeromancy.errors import NotFound, UsageError
from aeromancy.experiments.params import resolve_configs
from aeromancy.run_options import RunOptions
from aeromancy.tasks import TaskSpec, import_path, not_imported

SELF_PACKAGE = "aeromancy"


class TooDynamic(Exception):
    """The module declares tasks in a way that only importing it can tell."""


@dataclass(frozen=True)
class StaticTask:
    """A task read from source: its config defaults (None when they are not literals) and
    the parameters whose annotation, not their default, says which types they take."""

    defaults: dict[str, Any] | None
    annotated: frozenset[str] = frozenset()


@dataclass
class DeclaredTasks:
    """Tasks read from source, by name.

    ``maybe`` holds names imported from outside the project, any of which might be a task.
    """

    tasks: dict[str, StaticTask] = field(default_factory=dict)
    maybe: set[str] = field(default_factory=set)


def check_request(options: RunOptions, root: Path) -> None:
    """Refuse (UsageError, exit 2) a request the task module's source shows to be wrong."""
    if options.sweeps or options.repeat is not None:
        from aeromancy.experiments import sweeps

        axes = sweeps.parse_axes(options.sweeps)
        sweeps.check_request(axes, options.repeat, options.overrides, options.yes)
    declared = read_task_module(options.tasks, root)
    if declared is None:
        return
    if not declared.tasks and not declared.maybe:
        raise NotFound(
            f"{options.tasks} defines no tasks", "decorate functions with @aeromancy.task"
        )
    known = set(declared.tasks) | declared.maybe
    unknown = [name for name in options.only if name not in known]
    if unknown:
        raise NotFound(
            f"--only names unknown task {', '.join(unknown)}",
            f"tasks: {', '.join(sorted(declared.tasks))}",
        )
    _check_overrides(declared, options)


def _check_overrides(declared: DeclaredTasks, options: RunOptions) -> None:
    specs = {
        name: TaskSpec(name, not_imported, (), {}, found.defaults or {})
        for name, found in declared.tasks.items()
    }
    resolve_configs(specs, [item for item in options.overrides if _checkable(item[0], declared)])
    if options.only:
        named = {key.partition(".")[0] for key, _ in options.overrides}
        left_out = sorted(named - set(options.only))
        if left_out:
            raise UsageError(f"--set names task {', '.join(left_out)}, which --only leaves out")


def _checkable(key: str, declared: DeclaredTasks) -> bool:
    """Return whether the source tells all about ``--set key``: the task is unknown, or
    its defaults are literals and the parameter's type comes from its default."""
    task, _, rest = key.partition(".")
    found = declared.tasks.get(task)
    if found is None:
        return task not in declared.maybe
    return found.defaults is not None and rest.partition(".")[0] not in found.annotated


def read_task_module(tasks: str, root: Path) -> DeclaredTasks | None:
    """Return the tasks module ``tasks`` declares, or None when only importing it can tell.

    Raises NotFound for a module path with no file, UsageError for a syntax error.
    """
    root = root.resolve()
    path = _module_file(tasks, root)
    if path is None:
        return None  # a dotted module outside the project: it may be installed in the image
    try:
        return _Reader(root).read(path, tasks)
    except TooDynamic:
        return None


def _module_file(tasks: str, root: Path) -> Path | None:
    if tasks.endswith(".py") or "/" in tasks or (root / tasks).is_file():
        path = (root / tasks).resolve()
        if not path.is_file():
            raise NotFound(
                f"task module {tasks} not found under {root}",
                "pass a path or dotted module, or set [tool.aeromancy] tasks",
            )
        return path
    return _project_module(tasks, import_path(root))


def _project_module(dotted: str, directories: Iterable[Path]) -> Path | None:
    relative = Path(*dotted.split("."))
    for directory in directories:
        for candidate in (
            directory / relative.with_suffix(".py"),
            directory / relative / "__init__.py",
        ):
            if candidate.is_file():
                return candidate
    return None


class _Reader:
    """Reads the ``@task`` functions a module binds, following project-local imports."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.done: dict[Path, DeclaredTasks] = {}

    def read(self, path: Path, shown: str) -> DeclaredTasks:
        if path in self.done:
            return self.done[path]
        self.done[path] = DeclaredTasks()  # an import cycle reads as no tasks
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except SyntaxError as exc:
            raise UsageError(
                f"cannot load task module {shown}: SyntaxError: {exc}",
                "fix the module; --debug shows the traceback",
            ) from exc
        declared = self._declared(tree, path)
        self.done[path] = declared
        return declared

    def _declared(self, tree: ast.Module, path: Path) -> DeclaredTasks:
        decorators, modules = _task_aliases(tree)
        declared = DeclaredTasks()
        in_decorators = 0
        for node in _module_statements(tree.body):
            if isinstance(node, ast.ImportFrom):
                self._follow(node, path, declared)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.name == "__getattr__":
                    raise TooDynamic
                marks = [d for d in node.decorator_list if _is_task(d, decorators, modules)]
                in_decorators += len(marks)
                if marks:
                    plain = len(node.decorator_list) == 1
                    defaults = _defaults(node) if plain else None
                    declared.tasks[node.name] = StaticTask(defaults, _annotated(node))
        if _task_references(tree, decorators, modules) > in_decorators:
            raise TooDynamic  # task(...) used other than as a decorator
        return declared

    def _follow(self, node: ast.ImportFrom, path: Path, declared: DeclaredTasks) -> None:
        module = node.module or ""
        if node.level == 0 and module.split(".")[0] == SELF_PACKAGE:
            return
        source = self._source(node, path)
        names = [alias.name for alias in node.names]
        if source is None:
            if "*" in names and module.split(".")[0] not in sys.stdlib_module_names:
                raise TooDynamic
            declared.maybe.update(names)  # a task is named after its function, not the alias
            return
        imported = self.read(source, str(source))
        declared.maybe |= imported.maybe
        for name, found in imported.tasks.items():
            if "*" in names or name in names:
                declared.tasks[name] = found

    def _source(self, node: ast.ImportFrom, path: Path) -> Path | None:
        module = node.module or ""
        if node.level:
            base = path.parent
            for _ in range(node.level - 1):
                base = base.parent
            return _project_module(module, [base]) if module else None
        return _project_module(module, [*import_path(self.root), path.parent])


def _module_statements(body: Iterable[ast.stmt]) -> Iterable[ast.stmt]:
    """Yield the statements run at import time, inside if/try/with blocks too."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            yield from _module_statements([*node.body, *node.orelse])
        elif isinstance(node, ast.Try):
            handlers = [stmt for handler in node.handlers for stmt in handler.body]
            yield from _module_statements([*node.body, *handlers, *node.orelse, *node.finalbody])
        elif isinstance(node, ast.With):
            yield from _module_statements(node.body)


def _task_aliases(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Return the names bound to ``aeromancy.task`` and those bound to the package."""
    decorators: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in (SELF_PACKAGE, "aeromancy.tasks"):
            decorators.update(a.asname or a.name for a in node.names if a.name == "task")
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name for a in node.names if a.name == SELF_PACKAGE)
    return decorators, modules


def _is_task(node: ast.expr, decorators: set[str], modules: set[str]) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Name):
        return target.id in decorators
    return (
        isinstance(target, ast.Attribute)
        and target.attr == "task"
        and isinstance(target.value, ast.Name)
        and target.value.id in modules
    )


def _task_references(tree: ast.Module, decorators: set[str], modules: set[str]) -> int:
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, (ast.Name, ast.Attribute)) and _is_task(node, decorators, modules)
    )


def _annotated(node: ast.FunctionDef | ast.AsyncFunctionDef) -> frozenset[str]:
    arguments = [*node.args.args[1:], *node.args.kwonlyargs]
    return frozenset(argument.arg for argument in arguments if argument.annotation is not None)


def _defaults(node: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, Any] | None:
    """Return the config defaults of a task function, or None when they are not literals."""
    arguments = node.args
    if arguments.vararg or arguments.kwarg or arguments.posonlyargs:
        return None
    positional = arguments.args[1:]
    if len(arguments.defaults) != len(positional):
        return None
    pairs = [
        *zip(positional, arguments.defaults, strict=True),
        *zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True),
    ]
    defaults: dict[str, Any] = {}
    for argument, default in pairs:
        if default is None:
            return None
        try:
            defaults[argument.arg] = ast.literal_eval(default)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            return None
    return defaults
