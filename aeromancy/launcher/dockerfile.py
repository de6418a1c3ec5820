"""Rendering Dockerfile.template: the project's own, or the default shipped with Aeromancy.

Placeholders are ``{{ name }}``; each is replaced by one block of instructions.
The blocks use only files the launcher puts in the build context under
``.aeromancy/``. ``{{ project_code }}`` marks where the code would go: it is not built
in but mounted read-only at /app when the container starts (a code package), so the
template may hold nothing but comments after it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources

from aeromancy.errors import UsageError

TEMPLATE_NAME = "Dockerfile.template"
AEROMANCY_VENV = "/opt/aeromancy/venv"  # Aeromancy and its runtime: the launcher's versions
PROJECT_VENV = "/opt/project/venv"  # exactly the project's pdm.lock, nothing else
PROJECT_PYTHON_ENV = "AEROMANCY_PROJECT_PYTHON"  # the interpreter tasks run in
PLACEHOLDERS = ("base_image", "debian_packages", "python_dependencies", "aeromancy", "project_code")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")
CODE_BLOCK = (
    "# The project's code: a code package, mounted read-only at /app when the container starts"
)
_INSTALL = "install --no-index --no-cache-dir --require-hashes --find-links"
EXTRAS_CONTEXT = ".aeromancy/runtime-extras"  # wheels of what Aeromancy's extras add


def default_template() -> str:
    """Return the text of the template shipped in the aeromancy.launcher package."""
    return resources.files("aeromancy.launcher").joinpath(TEMPLATE_NAME).read_text("utf-8")


def render(
    template: str, base_image: str, debian_packages: Sequence[str], extras: Sequence[str] = ()
) -> str:
    """Return the Dockerfile for these inputs; raise UsageError for a bad template.

    ``extras`` (Aeromancy's, e.g. ``mlflow``) adds one layer installing what they add to
    Aeromancy's runtime venv; without extras the Dockerfile is unchanged.
    """
    used = set(_PLACEHOLDER.findall(template))
    unknown = sorted(used - set(PLACEHOLDERS))
    missing = sorted(set(PLACEHOLDERS) - used - {"debian_packages"})
    if unknown or missing:
        problem = f"unknown {{{{ {unknown[0]} }}}}" if unknown else f"no {{{{ {missing[0]} }}}}"
        raise UsageError(
            f"{TEMPLATE_NAME} has {problem}",
            "start from Aeromancy's default template: " + ", ".join(PLACEHOLDERS),
        )
    blocks = {
        "base_image": base_image,
        "debian_packages": _debian_block(debian_packages),
        "python_dependencies": _project_block(),
        "aeromancy": _aeromancy_block(extras),
        "project_code": CODE_BLOCK,
    }
    return _PLACEHOLDER.sub(lambda match: blocks[match.group(1)], template)


def _debian_block(packages: Sequence[str]) -> str:
    if not packages:
        return "# Debian packages: none"
    return "\n".join(
        [
            f"# Debian packages: {' '.join(packages)} (plus dependencies, fetched on the host)",
            "COPY .aeromancy/debs/ /tmp/aeromancy-debs/",
            "RUN dpkg -i /tmp/aeromancy-debs/*.deb && rm -rf /tmp/aeromancy-debs",
        ]
    )


def _aeromancy_block(extras: Sequence[str]) -> str:
    pip = f"{AEROMANCY_VENV}/bin/pip"
    return "\n".join(
        [
            "# Aeromancy's runtime in a venv of its own, at the launcher's versions (hashes",
            "# required): the same layer for every project on this base image",
            "COPY .aeromancy/runtime/ /tmp/aeromancy-runtime/",
            f"RUN python3 -m venv {AEROMANCY_VENV} \\",
            f" && {pip} {_INSTALL} /tmp/aeromancy-runtime"
            " -r /tmp/aeromancy-runtime/requirements.txt \\",
            " && rm -rf /tmp/aeromancy-runtime",
            *_extras_lines(pip, extras),
            "# Aeromancy: the launcher's own code, packed as a wheel",
            "COPY .aeromancy/self/ /tmp/aeromancy-self/",
            f"RUN {pip} install --no-index --no-deps --no-cache-dir /tmp/aeromancy-self/*.whl \\",
            f" && {pip} check && rm -rf /tmp/aeromancy-self",
        ]
    )


def _extras_lines(pip: str, extras: Sequence[str]) -> list[str]:
    """Return the layer adding what Aeromancy's ``extras`` need (nothing without extras).

    Its pins are the whole closure of the extras beyond the runtime's, hence --no-deps;
    the ``pip check`` after Aeromancy's wheel checks the venv as a whole.
    """
    if not extras:
        return []
    folder = "/tmp/aeromancy-extras"
    requirements = f"{folder}/requirements.txt"
    return [
        f"# What aeromancy[{','.join(sorted(extras))}] adds to the runtime (this run's tracker)",
        f"COPY {EXTRAS_CONTEXT}/ {folder}/",
        f"RUN if [ -s {requirements} ]; then {pip} {_INSTALL} {folder} --no-deps"
        f" -r {requirements}; fi \\",
        f" && rm -rf {folder}",
    ]


def _project_block() -> str:
    # The project's venv has no pip of its own: Aeromancy's pip installs into it, so it
    # holds exactly the locked distributions. Tasks run in it (AEROMANCY_PROJECT_PYTHON),
    # and so does the child that describes the task module for planning.
    requirements = "/tmp/aeromancy-wheels/requirements.txt"
    install = (
        f"{AEROMANCY_VENV}/bin/pip --python {PROJECT_VENV}/bin/python {_INSTALL}"
        f" /tmp/aeromancy-wheels -r {requirements}"
    )
    return "\n".join(
        [
            "# The project's locked dependencies (pdm.lock) and nothing else, in its own venv",
            "COPY .aeromancy/wheels/ /tmp/aeromancy-wheels/",
            f"RUN python3 -m venv --without-pip {PROJECT_VENV} \\",
            f" && if [ -s {requirements} ]; then {install}; fi \\",
            " && rm -rf /tmp/aeromancy-wheels",
            f"ENV {PROJECT_PYTHON_ENV}={PROJECT_VENV}/bin/python \\",
            f"    PATH={PROJECT_VENV}/bin:$PATH",
        ]
    )


def split_at_code(dockerfile: str) -> tuple[str, str]:
    """Return (everything before the code layer, the code layer and what follows it)."""
    at = dockerfile.index(CODE_BLOCK)
    return dockerfile[:at], dockerfile[at:]
