#!/usr/bin/env bash
# Run the demo: the shop, the django-q2 worker and the Pinterest sandbox, on SQLite by default.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/venv.sh
exec .venv/bin/python manage.py shop_demo_serve "$@"
