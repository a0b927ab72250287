#!/usr/bin/env bash
# Run the whole test suite: lint, migrations check, then pytest on SQLite and on PostgreSQL.
#
# PostgreSQL: TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test). Without a
# reachable server the PostgreSQL leg is skipped with a notice, except in CI (CI=true), where it
# is required. Browser tests skip themselves with a notice when Chromium is not installed.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/venv.sh || exit 1
PY=.venv/bin/python
PG_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
status=0

run_pytest() {  # a pytest exit 5 (no tests collected) is a failure too
    local label=$1; shift
    echo "=== pytest on $label ==="
    "$PY" -m pytest "$@"
    local rc=$?
    if [ $rc -eq 5 ]; then echo "pytest on $label collected no tests: failing." >&2; rc=1; fi
    if [ $rc -ne 0 ]; then status=1; fi
}

echo "=== ruff ==="
.venv/bin/ruff check . || status=1
.venv/bin/ruff format --check . || status=1
echo "=== makemigrations --check ==="
"$PY" manage.py makemigrations --check --dry-run || status=1

run_pytest "SQLite" "$@"

if "$PY" - "$PG_URL" <<'PYCHECK'
import sys
import psycopg
try:
    psycopg.connect(sys.argv[1].replace("postgres://", "postgresql://"), connect_timeout=3).close()
except Exception as exc:
    print(f"PostgreSQL not reachable at {sys.argv[1]}: {exc}", file=sys.stderr)
    sys.exit(1)
PYCHECK
then
    DATABASE_URL="$PG_URL" run_pytest "PostgreSQL" -m "not browser" "$@"
elif [ "${CI:-}" = "true" ]; then
    echo "CI requires PostgreSQL at $PG_URL: failing." >&2
    status=1
else
    echo "NOTICE: PostgreSQL leg SKIPPED (no server at $PG_URL; set TEST_POSTGRES_URL to run it)."
fi
exit $status
