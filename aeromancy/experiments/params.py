"""Task config: defaults, then params layers, then ``--set``, each value checked by type.

Layers, later ones winning: the task function's defaults; ``[tool.aeromancy.params.TASK]``
in pyproject.toml; ``params.toml`` at the project root (``[TASK]`` tables); ``--set
TASK.PARAM=VALUE`` (and ``--sweep``). Keys may be nested: ``train.optimizer.lr=0.1`` sets
one key of the dict-valued parameter ``optimizer``; a file's nested table merges into
a dict-valued parameter the same way.

The parameter's annotation says which types it takes (``float | int``, ``str | None``),
else its default's type does. A float parameter takes ints (``5`` stays the int 5, as
Python's numeric tower allows). ``sources`` names the layer each flattened key came from.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeromancy.errors import UsageError
from aeromancy.tasks import types_of

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

if TYPE_CHECKING:
    from aeromancy.tasks import TaskSpec

DEFAULT = "default"
SET = "--set"
PARAMS_FILE = "params.toml"
PYPROJECT_LAYER = "pyproject.toml"


@dataclass(frozen=True)
class Layer:
    """Typed values from one file: task -> parameter -> value (a table merges into a dict)."""

    name: str
    values: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Assignment:
    """One ``--set``-style assignment: ``task``, the key path inside its config, raw text."""

    task: str
    path: tuple[str, ...]
    raw: str
    source: str = SET

    @property
    def key(self) -> str:
        return ".".join((self.task, *self.path))


@dataclass
class ResolvedConfigs:
    """Each task's config and, per flattened key, the layer it came from."""

    configs: dict[str, dict[str, Any]]
    sources: dict[str, dict[str, str]] = field(default_factory=dict)


def split_key(key: str, raw: str, option: str = SET) -> Assignment:
    """Return ``TASK.PARAM[.KEY...]`` as an assignment; raise UsageError for a bare word."""
    task, dot, rest = key.partition(".")
    path = tuple(rest.split(".")) if rest else ()
    if not dot or not task or not path or not all(path):
        raise UsageError(f"{option} {key}={raw}: expected TASK.PARAM=VALUE")
    return Assignment(task, path, raw, option)


# --- types -----------------------------------------------------------------------------

_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True}
_BOOLEANS |= {"false": False, "no": False, "off": False, "0": False}
_NULLS = ("null", "none")
# The order raw text is tried in: bool before int (True is an int), str last.
_ORDER: tuple[type, ...] = (type(None), bool, int, float, list, dict, str)  # tasks.TYPE_ORDER


def allowed_types(spec: TaskSpec, param: str) -> tuple[type, ...] | None:
    """Return the types parameter ``param`` of ``spec`` takes (None: any JSON value)."""
    found = spec.annotated_types().get(param)
    if found is not None:
        return found
    return _types_of_value(spec.defaults[param])


def _types_of_value(value: Any) -> tuple[type, ...] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return (bool,)
    return types_of(type(value))


def _parse_as(kind: type, raw: str) -> Any:
    text = raw.strip()
    if kind is type(None):
        if text.lower() in _NULLS:
            return None
        raise ValueError("not null")
    if kind is bool:
        if text.lower() in _BOOLEANS:
            return _BOOLEANS[text.lower()]
        raise ValueError("expected true or false")
    if kind is int:
        return int(text)
    if kind is float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    if kind is str:
        return raw
    value = json.loads(raw)
    if not isinstance(value, kind):
        raise ValueError(f"expected a JSON {kind.__name__}")
    return value


def parse_value(raw: str, allowed: tuple[type, ...] | None) -> Any:
    """Return ``raw`` parsed as the first of ``allowed`` it fits; None allowed: any JSON or text.

    Raises ValueError when it fits none.
    """
    if allowed is None:
        try:
            return _finite(json.loads(raw))
        except ValueError:
            return raw
    errors = []
    for kind in _ORDER:
        if kind in allowed:
            try:
                return _parse_as(kind, raw)
            except ValueError as exc:
                errors.append(str(exc))
    raise ValueError(errors[-1] if errors else "no type fits")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def check_value(value: Any, allowed: tuple[type, ...] | None) -> bool:
    """Return True when a typed value (from a file) is one of ``allowed``."""
    if allowed is None:
        return True
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return any(isinstance(value, kind) for kind in allowed if kind is not bool)


def _type_names(allowed: tuple[type, ...] | None) -> str:
    if allowed is None:
        return "any"
    names = ["None" if kind is type(None) else kind.__name__ for kind in allowed]
    return " | ".join(dict.fromkeys(names))


# --- resolving -------------------------------------------------------------------------


class _Resolver:
    """Applies layers to copies of the defaults, remembering who set each key."""

    def __init__(self, specs: Mapping[str, TaskSpec]) -> None:
        self.specs = specs
        self.configs = {name: _copy_config(spec.defaults) for name, spec in specs.items()}
        self.set_by: dict[str, dict[tuple[str, ...], str]] = {name: {} for name in specs}

    def _check_target(self, where: str, task: str, path: tuple[str, ...]) -> None:
        if task not in self.specs:
            known = ", ".join(sorted(self.specs))
            raise UsageError(f"{where}: unknown task {task!r}", f"tasks: {known}")
        defaults = self.specs[task].defaults
        if path[0] not in defaults:
            known = ", ".join(sorted(defaults)) or "none"
            raise UsageError(
                f"{where}: task {task} has no parameter {path[0]!r}", f"parameters: {known}"
            )

    def _parent(self, where: str, task: str, path: tuple[str, ...]) -> dict[str, Any]:
        """Return the dict that holds the last key of ``path``."""
        node: Any = self.configs[task]
        for depth, key in enumerate(path[:-1]):
            node = node.get(key) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                dotted = ".".join(path[: depth + 1])
                raise UsageError(f"{where}: {task}.{dotted} is not a dict, so has no keys")
        return typing.cast(dict[str, Any], node)

    def _allowed(self, task: str, path: tuple[str, ...], parent: Mapping[str, Any]) -> Any:
        if len(path) == 1:
            return allowed_types(self.specs[task], path[0])
        return _types_of_value(parent.get(path[-1]))

    def assign_raw(self, item: Assignment) -> None:
        where = f"{item.source} {item.key}"
        self._check_target(where, item.task, item.path)
        parent = self._parent(where, item.task, item.path)
        allowed = self._allowed(item.task, item.path, parent)
        try:
            value = parse_value(item.raw, allowed)
        except ValueError as exc:
            raise UsageError(
                f"{where}={item.raw}: not a valid {_type_names(allowed)} ({exc})"
            ) from exc
        parent[item.path[-1]] = value
        self.set_by[item.task][item.path] = item.source

    def assign_layer(self, layer: Layer) -> None:
        if not isinstance(layer.values, Mapping):
            raise UsageError(f"{layer.name}: params must be tables, one per task")
        for task, params in layer.values.items():
            if not isinstance(params, Mapping):
                raise UsageError(f"{layer.name}: {task} must be a table of parameters")
            for param, value in params.items():
                self._assign_typed(layer.name, task, (str(param),), value)

    def _assign_typed(self, source: str, task: str, path: tuple[str, ...], value: Any) -> None:
        where = f"{source}: {'.'.join((task, *path))}"
        self._check_target(where, task, path)
        parent = self._parent(where, task, path)
        current = parent.get(path[-1])
        if isinstance(value, Mapping) and isinstance(current, dict):
            for key, inner in value.items():
                self._assign_typed(source, task, (*path, str(key)), inner)
            return
        allowed = self._allowed(task, path, parent)
        if not check_value(value, allowed):
            raise UsageError(
                f"{where} is {json.dumps(value, default=str)}, not a {_type_names(allowed)}"
            )
        parent[path[-1]] = copy.deepcopy(value)
        self.set_by[task][path] = source

    def sources(self) -> dict[str, dict[str, str]]:
        from aeromancy.experiments.flatten import flatten

        found: dict[str, dict[str, str]] = {}
        for task, config in self.configs.items():
            chosen = self.set_by[task]
            if chosen:
                found[task] = {key: _source_of(key, chosen) for key in flatten(config)}
            else:
                found[task] = dict.fromkeys(flatten(config), DEFAULT)
        return found


def _copy_config(defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``defaults`` that assigning into cannot change (only lists and
    dicts are copied deeply: the rest of a config's values are immutable)."""
    copied = dict(defaults)
    for key, value in copied.items():
        if isinstance(value, (list, dict)):
            copied[key] = copy.deepcopy(value)
    return copied


def _source_of(key: str, set_by: Mapping[tuple[str, ...], str]) -> str:
    path = tuple(key.split("."))
    for depth in range(len(path), 0, -1):
        if path[:depth] in set_by:
            return set_by[path[:depth]]
    return DEFAULT


def resolve_configs(
    specs: Mapping[str, TaskSpec],
    overrides: Iterable[tuple[str, str]] = (),
    layers: Sequence[Layer] = (),
    last: Sequence[Assignment] = (),
) -> ResolvedConfigs:
    """Return each task's config: defaults, ``layers`` in order, ``--set`` pairs, then ``last``.

    ``last`` holds assignments that name their own option (a variant's ``--sweep`` point).
    Raises UsageError naming an unknown task or parameter, or a value of the wrong type.
    """
    resolver = _Resolver(specs)
    for layer in layers:
        resolver.assign_layer(layer)
    for key, raw in overrides:
        resolver.assign_raw(split_key(key, raw))
    for item in last:
        resolver.assign_raw(item)
    return ResolvedConfigs(resolver.configs, resolver.sources())


def load_layers(root: Path, pyproject: Mapping[str, Any] | None = None) -> list[Layer]:
    """Return the params layers of the project at ``root``: pyproject.toml, then params.toml.

    Raises UsageError when params.toml is not valid TOML.
    """
    from aeromancy.settings import read_pyproject

    document = read_pyproject(root) if pyproject is None else pyproject
    layers = []
    params = document.get("tool", {}).get("aeromancy", {}).get("params")
    if params:
        layers.append(Layer(PYPROJECT_LAYER, params))
    path = root / PARAMS_FILE
    if path.is_file():
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{PARAMS_FILE} is not valid TOML: {exc}", "fix the file") from exc
        layers.append(Layer(PARAMS_FILE, values))
    return layers
