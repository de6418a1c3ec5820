"""``aeromancy init [DIR]``: scaffold a project that runs at once, ``--dev`` or tracked.

A tracked run builds ``FROM`` the base image; when ``aeromancy base-image`` has built
one on this machine (no registry reachable), the scaffold names it in
``[tool.aeromancy] base_image`` so the first tracked run needs no edit.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
from rich.markup import escape

from aeromancy import __version__
from aeromancy.cli.output import stdout_console
from aeromancy.errors import UsageError
from aeromancy.launcher.debian_base import local_base_images
from aeromancy.names import check_name
from aeromancy.settings import default_base_image

PYPROJECT = """\
[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.10"
# Aeromancy itself needs no pin here: tracked runs install the launcher's own version
# into the image. Add your pipeline's dependencies, then `pdm lock`.
dependencies = []

[tool.pdm]
distribution = false

[tool.aeromancy]
project = "{name}"
tasks = "pipeline.py"
{base_image}
# store = "s3://my-bucket/aeromancy"   # default: ~/.local/share/aeromancy/store
"""

DEFAULT_BASE_IMAGE_LINE = (
    '# base_image = "{default}"   # the default, pulled from a registry;'
    " without one, run `aeromancy base-image`"
)

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
    local = local_base_images()
    base_line = (
        f'base_image = "{local[0]}"   # built here by `aeromancy base-image`'
        if local
        else DEFAULT_BASE_IMAGE_LINE.format(default=default_base_image())
    )
    files = {
        "pyproject.toml": PYPROJECT.format(
            name=name,
            version=__version__.split("+")[0],
            base_image=base_line,
        ),
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
    if local:
        console.print(f"base image: {local[0]} (built here by aeromancy base-image)", markup=False)
    console.print(
        "next: cd there and run `aeromancy run --dev`; `aeromancy graph` draws the tasks.\n"
        "a tracked run (`aeromancy run`) needs a clean git tree, a committed pdm.lock and\n"
        "Docker: git init && git add -A && git commit -m init && pdm lock && git add pdm.lock"
        " && git commit -m lock",
        markup=False,
        soft_wrap=True,
    )


COMMANDS: list[click.Command] = [init]
