#!/usr/bin/env bash
# Run the benchmark suite (bench/run.py) and write its report to bench/results/.
#
# Installs what it needs from pyproject.toml (scripts/venv.sh: the demo, test and bench extras).
# PostgreSQL: BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test; only the
# server is used, each measurement creates and drops its own pcapi_bench_* database); without
# a reachable server the PostgreSQL rows are skipped with a notice. Extra arguments go to
# bench.run: ./scripts/bench.sh --quick, --databases sqlite, --only flush,workers.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/venv.sh
exec .venv/bin/python -m bench.run "$@"
