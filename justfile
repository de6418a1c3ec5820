# Everyday recipes. `just --list` shows them.

# Install pdm and the locked dependencies into .venv, build the base image, run the quickstart tracked.
install:
    bash scripts/setup

# Lint, type-check and run every test (extra args go to pytest).
test *ARGS:
    bash scripts/test {{ARGS}}

# ruff and mypy only.
lint:
    .venv/bin/ruff check aeromancy tests bench scripts
    .venv/bin/ruff format --check aeromancy tests bench scripts
    .venv/bin/mypy

# Run every benchmark in bench/ (not part of the tests).
bench:
    for f in bench/bench_*.py; do .venv/bin/python "$f"; done

# Build the documentation site into build/site (the CLI reference comes from the click
# commands through mkdocs-click); --strict turns every broken link into an error.
docs:
    NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict
