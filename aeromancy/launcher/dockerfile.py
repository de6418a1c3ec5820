"""Rendering Dockerfile.template: the project's own, or the default shipped with Aeromancy.

Placeholders are ``{{ name }}``; each is replaced by one block of instructions.
The blocks use only files the launcher puts in the build context under
``.aeromancy/`` and the committed tree under ``code/``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources

from aeromancy.errors import UsageError

TEMPLATE_NAME = "Dockerfile.template"
VENV = "/opt/aeromancy/venv"
PLACEHOLDERS = ("base_image", "debian_packages", "python_dependencies", "aeromancy", "project_code")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")
CODE_BLOCK = "COPY code/ /app/"


def default_template() -> str:
    """Return the text of the template shipped in the aeromancy.launcher package."""
    return resources.files("aeromancy.launcher").joinpath(TEMPLATE_NAME).read_text("utf-8")


def render(
    template: str,
    base_image: str,
    debian_packages: Sequence[str],
    has_python_pins: bool,
    has_self_wheel: bool,
) -> str:
    """Return the Dockerfile for these inputs; raise UsageError for a bad template."""
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
        "python_dependencies": _python_block(has_python_pins),
        "aeromancy": _self_block(has_self_wheel),
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


def _python_block(has_pins: bool) -> str:
    lines = [
        "# Locked Python dependencies (pdm.lock), from the host's wheelhouse, hashes required",
        "COPY .aeromancy/wheels/ /tmp/aeromancy-wheels/",
    ]
    install = (
        f" \\\n && {VENV}/bin/pip install --no-index --no-cache-dir --require-hashes"
        " --find-links /tmp/aeromancy-wheels -r /tmp/aeromancy-wheels/requirements.txt"
    )
    run = f"RUN python3 -m venv {VENV}" + (install if has_pins else "")
    return "\n".join([*lines, run + " \\\n && rm -rf /tmp/aeromancy-wheels"])


def _self_block(has_wheel: bool) -> str:
    if not has_wheel:
        return "# Aeromancy: pinned in pdm.lock, installed with the dependencies above"
    return "\n".join(
        [
            "# Aeromancy: the launcher's own code, packed as a wheel",
            "COPY .aeromancy/self/ /tmp/aeromancy-self/",
            f"RUN {VENV}/bin/pip install --no-index --no-deps --no-cache-dir"
            " /tmp/aeromancy-self/*.whl \\\n"
            f" && {VENV}/bin/pip check && rm -rf /tmp/aeromancy-self",
        ]
    )


def split_at_code(dockerfile: str) -> tuple[str, str]:
    """Return (everything before the code layer, the code layer and what follows it)."""
    at = dockerfile.index(CODE_BLOCK)
    return dockerfile[:at], dockerfile[at:]
