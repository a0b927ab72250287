"""``make demo``: the whole demo on one machine, with one command.

Prepares the database (migrations, catalogue, an ``admin`` superuser, the ``demo`` tenant's
sandbox ad account, the sweep schedule), then runs three children of this process: the local
Pinterest sandbox, the django-q2 worker and the web server, all pointed at the sandbox. It
stops them all on Ctrl-C / SIGTERM, and stops the rest and fails if one of them dies.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from shop_demo.shop.catalog import seed_catalog

HOST = "127.0.0.1"
DEMO_AD_ACCOUNT_ID = "549755885175"
DEMO_TOKEN = "sandbox-demo-token"  # the sandbox's token, not a Pinterest secret
ADMIN_USER = ADMIN_PASSWORD = "admin"  # demo only
START_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stop(Exception):
    """Raised from the SIGINT/SIGTERM handler so the clean-up in ``handle`` runs."""


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop


class Command(BaseCommand):
    help = (
        "Run the demo: migrate, seed the catalogue, an admin/admin superuser and the demo "
        "tenant's sandbox ad account, then start the Pinterest sandbox, the django-q2 worker "
        "and the web server until Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="Web port (default 8000).")
        parser.add_argument(
            "--sandbox-port", type=int, default=8765, help="Sandbox port (default 8765)."
        )
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="Do not start the django-q2 worker (events then stay pending in the outbox).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        web_port, sandbox_port = options["port"], options["sandbox_port"]
        for port in (web_port, sandbox_port):
            if not _port_free(port):
                raise CommandError(f"Port {port} on {HOST} is in use; choose another.")
        self._prepare(options["verbosity"])

        env = {
            **os.environ,
            "PINTEREST_CAPI_API_BASE_URL": f"http://{HOST}:{sandbox_port}/v5",
            "PYTHONUNBUFFERED": "1",
        }
        plan = [
            (
                "sandbox",
                [
                    "pinterest_capi_sandbox",
                    "--host",
                    HOST,
                    "--port",
                    str(sandbox_port),
                    "--account",
                    f"{DEMO_AD_ACCOUNT_ID}:{DEMO_TOKEN}",
                ],
            ),
            ("worker", ["qcluster"]),
            ("web", ["runserver", f"{HOST}:{web_port}", "--noreload"]),
        ]
        if options["no_worker"]:
            plan = [item for item in plan if item[0] != "worker"]

        # Set explicitly: a parent started from a script may inherit an ignored SIGINT.
        previous = {sig: signal.signal(sig, _on_stop_signal) for sig in STOP_SIGNALS}
        children: dict[str, subprocess.Popen] = {}
        try:
            for name, argv in plan:
                children[name] = self._spawn(name, argv, env)
            self._wait_for_ports(children, {"sandbox": sandbox_port, "web": web_port})
            self._verify_demo_account(sandbox_port)
            base = f"http://{HOST}:{web_port}"
            self.stdout.write(
                self.style.SUCCESS(f"\nStorefront: {base}/")
                + f"\nAdmin:      {base}/admin/   user {ADMIN_USER!r}, password "
                f"{ADMIN_PASSWORD!r} (demo only)"
                + f"\nSandbox:    http://{HOST}:{sandbox_port}/v5"
                + "\nPress Ctrl-C to stop.\n"
            )
            self._watch(children)
        except (KeyboardInterrupt, _Stop):
            self.stdout.write("\nStopping…")
        finally:
            for sig in STOP_SIGNALS:  # a second Ctrl-C must not cut the clean-up short
                signal.signal(sig, signal.SIG_IGN)
            _stop_all(children)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("Stopped.")

    # -- preparation ---------------------------------------------------------------------

    def _prepare(self, verbosity: int) -> None:
        self.stdout.write(f"Database: {settings.DATABASES['default']['NAME']}")
        call_command("migrate", interactive=False, verbosity=max(verbosity - 1, 0))
        seed_catalog()
        users = get_user_model().objects
        if not users.filter(username=ADMIN_USER).exists():
            users.create_superuser(ADMIN_USER, "admin@example.com", ADMIN_PASSWORD)
            self.stdout.write(f"Created superuser {ADMIN_USER!r} (password {ADMIN_PASSWORD!r}).")
        self._seed_ad_account()
        try:
            call_command("pinterest_capi_schedule")
        except (CommandError, LookupError) as exc:
            self.stderr.write(f"Sweep schedule not set up ({exc}); the nudged flushes still run.")

    def _seed_ad_account(self) -> None:
        """The demo tenant's ad account, with the token the sandbox accepts."""
        from pinterest_capi.models import AdAccount

        tenant = settings.PINTEREST_CAPI.get("DEFAULT_TENANT", "demo")
        account, _ = AdAccount.objects.get_or_create(
            tenant=tenant, ad_account_id=DEMO_AD_ACCOUNT_ID, defaults={"name": "Demo ad account"}
        )
        account.set_token(DEMO_TOKEN)
        account.save()
        self.stdout.write(f"Ad account {DEMO_AD_ACCOUNT_ID} ready for tenant {tenant!r}.")

    def _verify_demo_account(self, sandbox_port: int) -> None:
        """Verify connection, as an operator would: it fills the account's Pinterest Tag id,
        so the storefront renders the Tag (deduplicated with the server events)."""
        from pinterest_capi import client, verification
        from pinterest_capi.models import AdAccount

        settings.PINTEREST_CAPI = {
            **settings.PINTEREST_CAPI,
            "API_BASE_URL": f"http://{HOST}:{sandbox_port}/v5",
        }
        client.close_clients()
        tenant = settings.PINTEREST_CAPI.get("DEFAULT_TENANT", "demo")
        for account in AdAccount.objects.filter(tenant=tenant, ad_account_id=DEMO_AD_ACCOUNT_ID):
            result = verification.verify_account(account)
            self.stdout.write(f"Verify connection: {result.message}")
        client.close_clients()

    # -- children ------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        self.stdout.flush()
        process = subprocess.Popen(
            [sys.executable, "manage.py", *argv],
            cwd=settings.BASE_DIR,
            env=env,
            # Own process group: Ctrl-C reaches only us, and we stop the children in order.
            process_group=0,
        )
        self.stdout.write(f"Started {name} (pid {process.pid}): manage.py {' '.join(argv)}")
        return process

    def _wait_for_ports(self, children: dict[str, subprocess.Popen], ports: dict[str, int]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        waiting = dict(ports)
        while waiting:
            _check_alive(children)
            for name, port in list(waiting.items()):
                if _accepts(port):
                    del waiting[name]
            if time.monotonic() > deadline:
                raise CommandError(f"Timed out waiting for {', '.join(waiting)} to listen.")
            time.sleep(0.2)

    def _watch(self, children: dict[str, subprocess.Popen]) -> None:
        while True:
            _check_alive(children)
            time.sleep(0.5)


def _check_alive(children: dict[str, subprocess.Popen]) -> None:
    for name, process in children.items():
        code = process.poll()
        if code is not None:
            raise CommandError(
                f"The {name} process (pid {process.pid}) exited with code {code}; "
                "stopped the others."
            )


def _stop_all(children: dict[str, subprocess.Popen]) -> None:
    """SIGTERM every child still running, then SIGKILL those that outlive the grace period."""
    for process in children.values():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in children.values():
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers will
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False
