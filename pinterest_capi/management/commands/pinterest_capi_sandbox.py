"""``manage.py pinterest_capi_sandbox``: run the local Pinterest stand-in (demo, benchmarks)."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pinterest_capi.sandbox import SandboxServer
from pinterest_capi.sandbox.control import describe_routes

ENV_ACCOUNTS = "PINTEREST_SANDBOX_ACCOUNTS"


def parse_account(value: str) -> tuple[str, str]:
    """``"ID:TOKEN"`` → ``(ID, TOKEN)``; CommandError naming the problem (never the token)."""
    ad_account_id, sep, token = value.strip().partition(":")
    ad_account_id, token = ad_account_id.strip(), token.strip()
    if not sep or not token:
        raise CommandError(f"account {ad_account_id or '?'!r}: expected ID:TOKEN")
    if not ad_account_id.isdigit() or len(ad_account_id) > 18:
        raise CommandError(f"account {ad_account_id!r}: the ad account id must be 1-18 digits")
    return ad_account_id, token


class Command(BaseCommand):
    help = (
        "Run the Pinterest Conversions API sandbox: a local HTTP server that speaks Pinterest's v5 "
        "contract (POST /v5/ad_accounts/{id}/events, GET …/conversion_tags) with a ledger and "
        "fault injection under /_sandbox/. Point PINTEREST_CAPI_API_BASE_URL at the printed URL. "
        "Serves until Ctrl-C or SIGTERM. The sandbox's tokens are fake, which is why they may "
        "be given on the command line; never pass a real Pinterest token here."
    )
    requires_system_checks: list[str] = []  # needs no database or app config: start fast

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)"
        )
        parser.add_argument(
            "--port",
            type=int,
            default=8765,
            help="port to bind (default 8765; 0 picks a free port, printed on start)",
        )
        parser.add_argument(
            "--account",
            action="append",
            default=[],
            metavar="ID:TOKEN",
            help=(
                "an ad account and the (fake) bearer token it accepts; repeatable. Also read "
                f"from ${ENV_ACCOUNTS}='ID:TOKEN,ID:TOKEN'. Sandbox tokens only: argv is "
                "visible to other local users"
            ),
        )
        parser.add_argument(
            "--accept-any-token",
            action="store_true",
            help="accept any bearer token for any well-formed ad account id",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        specs = [s for s in os.environ.get(ENV_ACCOUNTS, "").split(",") if s.strip()]
        accounts = dict(parse_account(s) for s in [*specs, *options["account"]])
        if not accounts and not options["accept_any_token"]:
            self.stderr.write(
                "No accounts configured (--account ID:TOKEN or --accept-any-token): "
                "every events request will be answered 401."
            )
        if options["host"] not in ("127.0.0.1", "localhost", "::1"):
            self.stderr.write(
                f"Warning: binding {options['host']}: the /_sandbox/ control endpoints have no "
                "authentication; keep the sandbox on a trusted network."
            )
        if options["verbosity"] >= 1:
            _log_to_stderr(logging.DEBUG if options["verbosity"] >= 3 else logging.INFO)
        # Everything loaded so far (Django, the apps, the settings) lives as long as this process:
        # frozen, the garbage collector stops walking it again on every full collection, which
        # the sandbox's per-request allocations otherwise trigger every few batches.
        gc.freeze()
        try:
            srv = SandboxServer(
                host=options["host"],
                port=options["port"],
                accounts=accounts,
                accept_any_token=options["accept_any_token"],
            ).start()
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {options['host']}:{options['port']}: {exc}"
            ) from exc

        done = threading.Event()

        def _stop(signum: int, frame: Any) -> None:
            done.set()

        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.stdout.write(f"Pinterest sandbox listening on {srv.url}")
            if options["verbosity"] >= 1:
                ids = ", ".join(sorted(accounts)) or "none"
                self.stdout.write(f"  ad accounts: {ids}; any token: {options['accept_any_token']}")
                self.stdout.write("  control: " + "; ".join(describe_routes()))
                self.stdout.write("  stop with Ctrl-C")
            self.stdout.flush()
            while not done.wait(0.5):
                pass
        finally:
            srv.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("Pinterest sandbox stopped.")


def _log_to_stderr(level: int) -> None:
    """Show the sandbox's one-line-per-request log unless the project configured a handler."""
    log = logging.getLogger("pinterest_capi.sandbox")
    log.setLevel(level)
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
        log.propagate = False
