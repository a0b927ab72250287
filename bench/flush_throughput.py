"""Flush throughput alone: the "flush" section of the benchmark suite (bench/run.py).

Run:  .venv/bin/python bench/flush_throughput.py --flush-events 10000 [--databases sqlite]

Kept as a shortcut for ``python -m bench.run --only flush``: it seeds a backlog on a fresh
database per engine, runs ``manage.py pinterest_capi_flush --until-empty`` as a child process
against the sandbox (its own process) and compares, in the same run, a naive sender, Pinterest's
SDK and the sandbox's own capacity.  Other arguments are those of ``bench.run``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import main  # noqa: E402  (after the path: run as a script)

if __name__ == "__main__":
    main(["--only", "flush", *sys.argv[1:]])
