"""The module names a Python source file may import, read without running it.

Every import statement counts, wherever it is (module level, a function, a class, a
``try`` or ``if`` block), with its parent packages, and for ``from pkg import name`` also
``pkg.name`` (it may be a submodule). Statically dead code (``if False:``) is left out.

The fast path compiles the source and reads the ``IMPORT_NAME`` instructions of every
code object: CPython's compiler builds no Python object per syntax node, so this takes
about 60% of the time and 75% of the memory of :func:`ast.parse` on a large module.
When the bytecode does not have the shape expected (another Python version's compiler)
or the source does not compile, the syntax tree is read instead.
"""

from __future__ import annotations

import ast
import dis
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import CodeType

_IMPORT_NAME = dis.opmap["IMPORT_NAME"]
_EXTENDED_ARG = dis.opmap["EXTENDED_ARG"]
_LOAD_CONST = dis.opmap["LOAD_CONST"]
#: How CPython 3.14 loads an import's level; absent before.
_LOAD_SMALL_INT = dis.opmap.get("LOAD_SMALL_INT")

#: One import: (module name as written, level of dots, names after ``import`` or None).
_Import = tuple[str, int, tuple[str, ...] | None]


class _UnexpectedBytecode(Exception):
    """The compiled code does not load an import's level and names as expected."""


def imported_names(path: Path, source: bytes, package: str) -> Iterator[str]:
    """Yield every dotted module name ``source`` may import (the file ``path`` of the
    package ``package``, '' for a top-level module), parents and submodules included."""
    for module, level, names in _imports(path, source):
        yield from _expand(module, level, names, package)


def _imports(path: Path, source: bytes) -> list[_Import]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = compile(source, str(path), "exec", dont_inherit=True, optimize=0)
        return list(_bytecode_imports(code))
    except (SyntaxError, ValueError, IndexError, _UnexpectedBytecode):
        return _tree_imports(path, source)


def _expand(module: str, level: int, names: tuple[str, ...] | None, package: str) -> Iterator[str]:
    if names is None:  # import a.b.c
        yield from _with_parents(module)
        return
    base = _absolute(module, level, package)
    if base is None:
        return
    if base:
        yield from _with_parents(base)
    # ``from pkg import name`` may name a submodule; a miss is simply not found.
    for name in names:
        if name != "*":
            yield f"{base}.{name}" if base else name


def _bytecode_imports(top: CodeType) -> Iterator[_Import]:
    """Yield the imports of ``top`` and of every code object nested in it."""
    stack = [top]
    while stack:
        code = stack.pop()
        yield from _imports_of(code)
        stack.extend(const for const in code.co_consts if isinstance(const, CodeType))


def _imports_of(code: CodeType) -> Iterator[_Import]:
    """Yield the imports one code object performs: each ``IMPORT_NAME`` follows the loads
    of its level and of its names (None for ``import a.b``)."""
    raw = code.co_code
    at = raw.find(_IMPORT_NAME)
    while at != -1:
        if at % 2 == 0:  # an opcode, not an argument
            name_arg, start = _argument(raw, at)
            names_op, names_arg, start = _instruction_before(raw, start)
            level_op, level_arg, _ = _instruction_before(raw, start)
            if names_op != _LOAD_CONST:
                raise _UnexpectedBytecode
            names = code.co_consts[names_arg]
            level = _level(code, level_op, level_arg)
            if not (names is None or isinstance(names, tuple)):
                raise _UnexpectedBytecode
            yield code.co_names[name_arg], level, names
        at = raw.find(_IMPORT_NAME, at + 1)


def _level(code: CodeType, op: int, arg: int) -> int:
    if op == _LOAD_CONST:
        level = code.co_consts[arg]
    elif op == _LOAD_SMALL_INT:  # never true before 3.14 (None)
        level = arg
    else:
        raise _UnexpectedBytecode
    if not isinstance(level, int) or isinstance(level, bool) or level < 0:
        raise _UnexpectedBytecode
    return level


def _argument(raw: bytes, at: int) -> tuple[int, int]:
    """Return the full argument of the instruction at ``at`` and where its
    ``EXTENDED_ARG`` prefixes start."""
    arg = raw[at + 1]
    shift = 8
    start = at
    while start >= 2 and raw[start - 2] == _EXTENDED_ARG:
        arg |= raw[start - 1] << shift
        shift += 8
        start -= 2
    return arg, start


def _instruction_before(raw: bytes, start: int) -> tuple[int, int, int]:
    """Return (opcode, argument, start) of the instruction ending at ``start``."""
    if start < 2:
        raise _UnexpectedBytecode
    arg, begins = _argument(raw, start - 2)
    return raw[start - 2], arg, begins


def _tree_imports(path: Path, source: bytes) -> list[_Import]:
    """The imports of ``source`` read from its syntax tree (none when it does not parse)."""
    try:
        tree = ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError):
        return []
    found: list[_Import] = []
    for node in _statements(tree.body):
        if isinstance(node, ast.Import):
            found.extend((alias.name, 0, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names)
            found.append((node.module or "", node.level, names))
    return found


#: The fields of a statement that hold statements (an import is always a statement).
_BLOCKS = ("body", "orelse", "finalbody", "handlers", "cases")


def _statements(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Yield every statement of ``body`` and of the blocks nested in it, at any depth.

    Unlike ``ast.walk`` it never descends into expressions (decorators, calls, literals),
    which hold no import statement and make up most of a large module's tree.
    """
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        yield node
        for name in _BLOCKS:
            block = getattr(node, name, None)
            if isinstance(block, list):
                stack.extend(block)


def _with_parents(dotted: str) -> Iterator[str]:
    parts = dotted.split(".")
    for end in range(1, len(parts) + 1):
        yield ".".join(parts[:end])


def _absolute(module: str, level: int, package: str) -> str | None:
    """Return the absolute name of a (possibly relative) import, or None if it escapes."""
    if level == 0:
        return module
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return None
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, module] if module else base)
