#!/usr/bin/env bash
# Create .venv and install the project with its demo, test and bench extras (idempotent, quick
# when done). The bench extra is the benchmark's comparison point (Pinterest's SDK), which the
# suite's smoke test of bench/ also runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "django-pinterest-capi needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))." >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv with $("$PYTHON" --version)…"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "Installing the project and its dependencies into .venv…"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[demo,test,bench]"
    touch "$stamp"
fi
