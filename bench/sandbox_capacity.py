"""Sandbox capacity: how many events/s the local Pinterest sandbox accepts, optionally side by side.

Run:  .venv/bin/python bench/sandbox_capacity.py [--events 100000] [--rounds 3] [--baseline main]

The same measurement as the suite's "sandbox capacity" row (``bench.tasks.senders``): the same
ready-made 1,000-event bodies (the app's own events and encoding), posted with ``?test=true``
straight from httpx over ``--connections`` keep-alive connections at once, to
``manage.py pinterest_capi_sandbox`` running in a process of its own.

``--baseline REF`` also starts the sandbox of git revision REF (``git archive`` of the whole tree
into a temporary directory, run from there with this venv) and measures both in the same run,
alternating rounds, so the machine's noise hits both alike.  Before timing it checks that both
answer the body byte for byte alike.  The ratio printed is this tree's events/s over the
baseline's (median of the rounds).  ``--body varied`` posts 1,000 valid events that use every
field of the contract instead, ``--body mixed`` the same with one event in five failing or
warning (the sandbox's slower, reference path; see ``tests/sandbox_batches.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import ACCOUNT_ID, TOKEN, blast, free_port, wait_for_port  # noqa: E402

HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@contextlib.contextmanager
def sandbox(tree: Path) -> Iterator[str]:
    """``manage.py pinterest_capi_sandbox`` of ``tree`` (as the bench runs it); its events URL."""
    port = free_port()
    argv = [sys.executable, "manage.py", "pinterest_capi_sandbox", "--port", str(port)]
    argv += ["--account", f"{ACCOUNT_ID}:{TOKEN}", "--verbosity", "0"]
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "shop_demo.settings", "PYTHONPATH": str(tree)}
    proc = subprocess.Popen(
        argv, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """The tree of git revision ``ref`` in a temporary directory (removed afterwards)."""
    tmp = Path(tempfile.mkdtemp(prefix="sbx_sandbox_baseline_"))
    try:
        archive = subprocess.run(
            ["git", "archive", ref], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def make_body(kind: str) -> bytes:
    """1,000 events as one request body: the bench's checkout events, or the varied batch."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_demo.settings")
    import django

    django.setup()
    from pinterest_capi.outbox import encode_payload

    if kind == "bench":
        from bench.tasks import make_events

        events = make_events(1000, "cap")
    else:
        from tests.sandbox_batches import varied_batch

        events = varied_batch(1000, now=int(time.time()), failures=kind == "mixed")
    return ('{"data":[' + ",".join(encode_payload(e) for e in events) + "]}").encode()


def capacity(url: str, body: bytes, events: int, connections: int) -> float:
    """Post ``body`` ``events // 1000`` times over ``connections`` connections; events/s."""
    batches = max(connections, events // 1000)
    events_url = f"{url}/v5/ad_accounts/{ACCOUNT_ID}/events?test=true"
    seconds = blast(events_url, body, batches, connections, HEADERS, accept=(200, 422))
    return batches * 1000 / seconds


def reset(url: str) -> None:
    """Empty the sandbox's ledger, so every round starts from the same memory."""
    request = urllib.request.Request(f"{url}/_sandbox/reset", method="POST", data=b"")
    urllib.request.urlopen(request, timeout=60).close()


def answer(url: str, body: bytes) -> tuple[int, bytes]:
    import httpx

    response = httpx.post(
        f"{url}/v5/ad_accounts/{ACCOUNT_ID}/events?test=true", content=body, headers=HEADERS
    )
    return response.status_code, response.content


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per round and tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--baseline", metavar="REF", help="git revision to compare with")
    parser.add_argument("--body", choices=("bench", "varied", "mixed"), default="bench")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    body = make_body(args.body)
    with contextlib.ExitStack() as stack:
        urls = {"this tree": stack.enter_context(sandbox(ROOT))}
        if args.baseline:
            tree = stack.enter_context(checkout(args.baseline))
            urls[f"baseline {args.baseline}"] = stack.enter_context(sandbox(tree))
            answers = {name: answer(url, body) for name, url in urls.items()}
            if len(set(answers.values())) != 1:
                raise SystemExit("the two sandboxes answer the body differently")
        for url in urls.values():  # warm-up: imports, first connections
            capacity(url, body, 4000, args.connections)
        figures: dict[str, list[float]] = {name: [] for name in urls}
        for round_ in range(args.rounds):
            order = list(urls.items())
            if round_ % 2:
                order.reverse()
            for name, url in order:
                reset(url)
                figures[name].append(capacity(url, body, args.events, args.connections))
                print(f"round {round_ + 1} {name:<24} {figures[name][-1]:>10,.0f} events/s")
    result = {
        "events_per_round": args.events,
        "connections": args.connections,
        "body": args.body,
        "events_per_s": {name: round(statistics.median(v)) for name, v in figures.items()},
        "rounds": {name: [round(x) for x in v] for name, v in figures.items()},
    }
    for name, value in result["events_per_s"].items():
        print(f"median {name:<24} {value:>10,} events/s")
    if args.baseline:
        this, base = result["events_per_s"].values()
        result["ratio"] = round(this / base, 2)
        print(f"this tree / baseline: {result['ratio']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
