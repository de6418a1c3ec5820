"""The import scan: the bytecode reader finds what the syntax-tree reader finds."""

from __future__ import annotations

import dis
import sysconfig
import textwrap
from pathlib import Path

import pytest

from aeromancy import import_names
from aeromancy.import_names import imported_names


def _names(source: str, package: str = "") -> set[str]:
    return set(imported_names(Path("m.py"), textwrap.dedent(source).encode(), package))


def _tree_names(path: Path, source: bytes, package: str) -> set[str]:
    found = set()
    for module, level, names in import_names._tree_imports(path, source):
        found.update(import_names._expand(module, level, names, package))
    return found


def test_every_kind_of_import_statement_is_found() -> None:
    source = """
        import a.b.c as d
        from . import sibling
        from ..up import (y, z)
        from q import *
        def f():
            from r.s import t
            import u
        class C:
            import v
            def method(self):
                async def inner():
                    import w
        try:
            import x1
        except ImportError:
            import x2
        finally:
            import x3
        match 1:
            case 1:
                import x4
        with open("f") as handle:
            import x5
        lambda: __import__("not_a_statement")
    """
    assert _names(source, package="pkg.sub") == {
        "a", "a.b", "a.b.c",
        "pkg.sub", "pkg.sub.sibling",
        "pkg", "pkg.up", "pkg.up.y", "pkg.up.z",
        "q",
        "r", "r.s", "r.s.t", "u", "v", "w",
        "x1", "x2", "x3", "x4", "x5",
    }  # fmt: skip


def test_relative_imports_of_a_top_level_module() -> None:
    assert _names("from . import helper\nfrom .. import escapes\n") == {"helper"}


def test_statically_dead_imports_are_left_out() -> None:
    assert _names("if False:\n    import never\nimport always\n") == {"always"}


def test_long_arguments_behind_extended_arg_are_read() -> None:
    # 300 constants and 300 names before the import push its arguments past one byte.
    filler = "".join(f"v{i} = {i}.5\n" for i in range(300))
    source = filler + "from pkg.late import thing\nimport last.one\n"
    code = compile(source, "m.py", "exec")
    assert any(ins.opname == "EXTENDED_ARG" for ins in dis.get_instructions(code))
    assert _names(source) == {"pkg", "pkg.late", "pkg.late.thing", "last", "last.one"}


def test_source_that_parses_but_does_not_compile_is_read_from_its_tree() -> None:
    # ``return`` outside a function: ast.parse accepts it, compile refuses.
    assert _names("import kept\nreturn\n") == {"kept"}


def test_source_that_does_not_parse_imports_nothing() -> None:
    assert _names("import ok\ndef broken(:\n") == set()
    assert _names("import ok\x00\n") == set()


def test_unexpected_bytecode_is_refused_so_the_tree_is_read() -> None:
    code = compile("import os\n", "m.py", "exec")
    raw = bytearray(code.co_code)
    at = next(i.offset for i in dis.get_instructions(code) if i.opname == "IMPORT_NAME")
    raw[at - 2] = dis.opmap["NOP"]  # the load of the names is gone
    with pytest.raises(import_names._UnexpectedBytecode):
        list(import_names._bytecode_imports(code.replace(co_code=bytes(raw))))


def _corpus() -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    aeromancy = Path(import_names.__file__).parent
    files = sorted(aeromancy.rglob("*.py"))
    for package in ("asyncio", "email", "importlib", "json", "concurrent", "xml", "unittest"):
        files += sorted((stdlib / package).rglob("*.py"))
    return files


def test_bytecode_and_tree_agree_on_real_code() -> None:
    """Over Aeromancy's own modules and several standard-library packages (hundreds of
    files) the two readers give the same names, except that the tree also names imports
    the compiler drops as dead code."""
    files = _corpus()
    assert len(files) > 300
    differing = []
    for path in files:
        source = path.read_bytes()
        package = path.parent.name if (path.parent / "__init__.py").exists() else ""
        # The fast path itself reads every one of them (no fallback to the tree).
        list(import_names._bytecode_imports(compile(source, str(path), "exec")))
        fast = set(imported_names(path, source, package))
        tree = _tree_names(path, source, package)
        assert fast <= tree, path
        if fast != tree:
            differing.append(path)
    # Dead imports (``if 0:``, code after ``raise``) are rare in real code.
    assert len(differing) <= len(files) // 50, differing
