#!/usr/bin/env bash
# Run the whole test suite: lint, migrations check, then pytest on SQLite and on PostgreSQL.
#
# PostgreSQL: TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test). Without a
# reachable server the PostgreSQL leg is skipped with a notice, except in CI (CI=true), where it
# is required. Browser tests skip themselves with a notice when Chromium is not installed.
#
# Each leg has two pytest invocations: the main suite (settings tests.settings, the demo shop)
# and tests/contrib_project, a django-oscar + django-allauth shop with its own settings module
# for the contrib adapters. The second runs with --nomigrations: Oscar's ~150 migrations take
# about a minute to apply and are not what is under test (the tables are the same; the main
# suite applies this app's own migrations).
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
    if [ $rc -eq 5 ] && [ "${ALLOW_NO_TESTS:-0}" = "1" ]; then
        echo "NOTICE: pytest on $label: no test matched the extra arguments."
        rc=0
    fi
    if [ $rc -eq 5 ]; then echo "pytest on $label collected no tests: failing." >&2; rc=1; fi
    if [ $rc -ne 0 ]; then status=1; fi
}

echo "=== ruff ==="
.venv/bin/ruff check . || status=1
.venv/bin/ruff format --check . || status=1
echo "=== makemigrations --check ==="
"$PY" manage.py makemigrations --check --dry-run || status=1

CONTRIB=(tests/contrib_project --ds=tests.contrib_project.settings --nomigrations)
# Extra arguments (say -k delivery) go to both invocations; one of them may then select nothing,
# which is fine only when arguments were given. A plain run fails on an empty invocation.
allow_empty=0
if [ $# -gt 0 ]; then allow_empty=1; fi

ALLOW_NO_TESTS=$allow_empty run_pytest "SQLite" "$@"
ALLOW_NO_TESTS=$allow_empty run_pytest "SQLite (contrib project: Oscar, allauth)" \
    "${CONTRIB[@]}" "$@"

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
    DATABASE_URL="$PG_URL" ALLOW_NO_TESTS=$allow_empty run_pytest "PostgreSQL" -m "not browser" "$@"
    DATABASE_URL="$PG_URL" ALLOW_NO_TESTS=$allow_empty \
        run_pytest "PostgreSQL (contrib project: Oscar, allauth)" \
        "${CONTRIB[@]}" "$@"
elif [ "${CI:-}" = "true" ]; then
    echo "CI requires PostgreSQL at $PG_URL: failing." >&2
    status=1
else
    echo "NOTICE: PostgreSQL leg SKIPPED (no server at $PG_URL; set TEST_POSTGRES_URL to run it)."
fi
exit $status
