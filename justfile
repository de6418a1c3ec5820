# Everyday recipes. `just --list` shows them.

# Install pdm (if needed) and the locked dependencies; runs the quickstart once.
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

# Regenerate the command reference in docs/cli.md from the click commands.
docs:
    .venv/bin/python scripts/cli_reference.py > docs/cli.md
