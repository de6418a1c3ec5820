"""Fingerprints and code identity: which edits make a task stale and which do not."""

from __future__ import annotations

from pathlib import Path

from aeromancy.fingerprint import CodeScanner, fingerprint


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _identity(root: Path, module: str = "pipeline.py") -> tuple[str, tuple[str, ...]]:
    code = CodeScanner(root, [root]).identity((root / module).resolve())
    return code.digest, code.files


PROJECT = {
    "pipeline.py": "import json\nimport helpers\nfrom lib import maths\n",
    "helpers.py": "from lib.deep import leaf\n",
    "lib/__init__.py": "",
    "lib/maths.py": "from . import sibling\n",
    "lib/sibling.py": "X = 1\n",
    "lib/deep/__init__.py": "",
    "lib/deep/leaf.py": "Y = 2\n",
    "unused.py": "Z = 3\n",
    "README.md": "hello\n",
}


def test_code_identity_follows_imports_transitively(tmp_path: Path) -> None:
    _write(tmp_path, PROJECT)
    _, files = _identity(tmp_path)
    assert files == (
        "helpers.py",
        "lib/__init__.py",
        "lib/deep/__init__.py",
        "lib/deep/leaf.py",
        "lib/maths.py",
        "lib/sibling.py",
        "pipeline.py",
    )


def test_editing_an_imported_module_changes_identity(tmp_path: Path) -> None:
    _write(tmp_path, PROJECT)
    before, _ = _identity(tmp_path)
    (tmp_path / "lib" / "deep" / "leaf.py").write_text("Y = 3\n")
    after, _ = _identity(tmp_path)
    assert before != after


def test_editing_unrelated_files_keeps_identity(tmp_path: Path) -> None:
    _write(tmp_path, PROJECT)
    before, _ = _identity(tmp_path)
    (tmp_path / "README.md").write_text("changed\n")
    (tmp_path / "unused.py").write_text("Z = 4\n")
    assert _identity(tmp_path)[0] == before


def test_identity_is_independent_of_where_the_project_lives(tmp_path: Path) -> None:
    _write(tmp_path / "a", PROJECT)
    _write(tmp_path / "b", PROJECT)
    assert _identity(tmp_path / "a") == _identity(tmp_path / "b")


def test_installed_packages_are_not_project_code(tmp_path: Path) -> None:
    _write(tmp_path, {"pipeline.py": "import click\nimport rich.console\n"})
    assert _identity(tmp_path)[1] == ("pipeline.py",)


def test_import_cycles_terminate(tmp_path: Path) -> None:
    _write(tmp_path, {"pipeline.py": "import a\n", "a.py": "import b\n", "b.py": "import a\n"})
    assert _identity(tmp_path)[1] == ("a.py", "b.py", "pipeline.py")


def test_fingerprint_changes_with_each_part() -> None:
    base = {"task": "t", "code": "c", "config": {"n": 1}, "inputs": {"a": "d1"}, "environment": "e"}
    reference = fingerprint(**base)  # type: ignore[arg-type]
    assert fingerprint(**base) == reference  # type: ignore[arg-type]
    for key, value in [
        ("task", "u"),
        ("code", "c2"),
        ("config", {"n": 2}),
        ("inputs", {"a": "d2"}),
        ("environment", "e2"),
    ]:
        assert fingerprint(**{**base, key: value}) != reference  # type: ignore[arg-type]


def test_fingerprint_ignores_mapping_order() -> None:
    one = fingerprint("t", "c", {"a": 1, "b": 2}, {"x": "1", "y": "2"}, "e")
    two = fingerprint("t", "c", {"b": 2, "a": 1}, {"y": "2", "x": "1"}, "e")
    assert one == two


def test_import_scan_cache_gives_the_same_identity_and_survives_corruption(
    tmp_path: Path,
) -> None:
    root = tmp_path / "project"
    _write(root, PROJECT)
    cache = tmp_path / "cache"
    fresh = CodeScanner(root, [root]).identity((root / "pipeline.py").resolve())
    first = CodeScanner(root, [root], cache).identity((root / "pipeline.py").resolve())
    cached_files = sorted((cache / "imports").iterdir())
    assert cached_files
    second = CodeScanner(root, [root], cache).identity((root / "pipeline.py").resolve())
    assert fresh == first == second
    for path in cached_files:
        path.write_text("{not json")
    third = CodeScanner(root, [root], cache).identity((root / "pipeline.py").resolve())
    assert third == fresh
