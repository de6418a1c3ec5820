"""``aeromancy init [DIR]``: scaffold a project that runs with ``aeromancy run --dev`` at once."""

from __future__ import annotations

import re
from pathlib import Path

import click
from rich.markup import escape

from aeromancy import __version__
from aeromancy.cli.output import stdout_console
from aeromancy.errors import UsageError
from aeromancy.names import check_name

PYPROJECT = """\
[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.10"
# Aeromancy itself needs no pin here: tracked runs install the launcher's own version
# into the image. Add your pipeline's dependencies, then `pdm lock`.
dependencies = []

[tool.aeromancy]
project = "{name}"
tasks = "pipeline.py"
# store = "s3://my-bucket/aeromancy"   # default: ~/.local/share/aeromancy/store
"""

PIPELINE = '''\
"""The {name} pipeline: `aeromancy run --dev` runs it, `aeromancy graph` draws it."""

import json
import random

from aeromancy import Context, task


@task(outputs={{"numbers": "dataset"}})
def generate(ctx: Context, count: int = 1000, seed: int = 0) -> None:
    """Write `count` random numbers, one per line."""
    rng = random.Random(seed)
    path = ctx.workdir / "numbers.txt"
    path.write_text("".join(f"{{rng.gauss(0, 1):.6f}}\\n" for _ in range(count)))
    ctx.save("numbers", path, metadata={{"count": count}})


@task(inputs=["numbers"], outputs={{"summary": "report"}})
def summarize(ctx: Context) -> None:
    """Report the mean and spread of the numbers."""
    values = [float(line) for line in (ctx.load("numbers") / "numbers.txt").read_text().split()]
    mean = sum(values) / len(values)
    spread = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    ctx.log({{"mean": mean, "std": spread}})
    path = ctx.workdir / "summary.json"
    path.write_text(json.dumps({{"count": len(values), "mean": mean, "std": spread}}, indent=2))
    ctx.save("summary", path)
'''

GITIGNORE = """\
__pycache__/
*.py[cod]
.venv/
.pdm-python
.pdm-build/
dist/
wandb/
"""


def project_name(directory: Path) -> str:
    """Return a valid project name derived from the directory's name."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", directory.name).strip("-_.") or "pipeline"
    return check_name(name, "project")


@click.command("init")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default=None, help="Project name (default: the directory's name).")
def init(directory: Path | None, name: str | None) -> None:
    """Create a new project in DIR (default: here) that runs at once."""
    target = (directory or Path.cwd()).resolve()
    name = check_name(name, "project") if name else project_name(target)
    files = {
        "pyproject.toml": PYPROJECT.format(name=name, version=__version__.split("+")[0]),
        "pipeline.py": PIPELINE.format(name=name),
        ".gitignore": GITIGNORE,
    }
    existing = [relative for relative in files if (target / relative).exists()]
    if existing:
        raise UsageError(
            f"{target} already has {', '.join(existing)}",
            "choose an empty directory or remove those files",
        )
    target.mkdir(parents=True, exist_ok=True)
    for relative, text in files.items():
        (target / relative).write_text(text, encoding="utf-8")
    console = stdout_console()
    console.print(f"created project [bold]{name}[/] in {escape(str(target))}", soft_wrap=True)
    console.print(
        "next: cd there and run `aeromancy run --dev`; `aeromancy graph` draws the tasks.\n"
        "tracked runs also need git (git init, commit) and a lockfile (pdm lock).",
        markup=False,
        soft_wrap=True,
    )


COMMANDS: list[click.Command] = [init]
