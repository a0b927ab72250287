"""``manage.py pinterest_capi_account add|list``: manage ad accounts from a shell or script.

The access token is read from the ``PINTEREST_ACCESS_TOKEN`` environment
variable or standard input, never from the command line (argv is visible to
every user of the machine and kept in shell history).
"""

from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from pinterest_capi.models import AdAccount, ad_account_id_validator

TOKEN_ENV = "PINTEREST_ACCESS_TOKEN"


class Command(BaseCommand):
    help = (
        "Add or list Pinterest ad accounts. `add` reads the access token from the "
        f"{TOKEN_ENV} environment variable, or from standard input if it is not set "
        "(never from the command line)."
    )

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser(
            "add",
            help="Add an ad account, or replace the token of an existing one.",
            description=f"Token from ${TOKEN_ENV} or stdin, e.g. "
            f"`{TOKEN_ENV}=pina_… manage.py pinterest_capi_account add --tenant shop1 "
            "--ad-account-id 549755885175`.",
        )
        add.add_argument("--tenant", required=True, help="Tenant (shop) key.")
        add.add_argument("--ad-account-id", required=True, help="Pinterest ad account id (digits).")
        add.add_argument("--name", default="", help="A name to show in the admin.")
        add.add_argument(
            "--test-mode",
            action="store_true",
            help="Send with ?test=true: validated by Pinterest, not recorded.",
        )
        add.add_argument("--inactive", action="store_true", help="Add it switched off.")
        sub.add_parser("list", help="List ad accounts (never their tokens).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "add":
            self._add(options)
        else:
            self._list()

    def _read_token(self) -> str:
        token = os.environ.get(TOKEN_ENV, "")
        if not token and sys.stdin is not None:
            # A terminal gets a hidden prompt; a pipe is read as it is.
            token = getpass.getpass("Access token: ") if sys.stdin.isatty() else sys.stdin.read()
        token = token.strip()
        if not token:
            raise CommandError(f"No access token: set {TOKEN_ENV} or pipe it on standard input.")
        return token

    def _add(self, options: dict[str, Any]) -> None:
        ad_account_id = str(options["ad_account_id"]).strip()
        try:
            ad_account_id_validator(ad_account_id)
        except ValidationError as exc:
            raise CommandError(f"--ad-account-id: {exc.messages[0]}") from None
        token = self._read_token()
        with transaction.atomic():
            account, created = AdAccount.objects.select_for_update().get_or_create(
                tenant=options["tenant"],
                ad_account_id=ad_account_id,
                defaults={"name": options["name"]},
            )
            if options["name"]:
                account.name = options["name"]
            account.test_mode = options["test_mode"]
            account.active = not options["inactive"]
            account.set_token(token)
            account.save()
        verb = "Added" if created else "Updated"
        self.stdout.write(
            f"{verb} ad account {account.ad_account_id} for tenant {account.tenant!r} "
            f"(token {account.token_hint}{', test mode' if account.test_mode else ''})."
        )

    def _list(self) -> None:
        rows = AdAccount.objects.order_by("tenant", "ad_account_id")
        if not rows:
            self.stdout.write("No ad accounts. Add one with `pinterest_capi_account add`.")
            return
        self.stdout.write(f"{'tenant':20} {'ad account':18} {'token':7} {'state':10} name")
        for a in rows:
            if not a.active:
                state = "inactive"
            elif a.auth_error:
                state = "auth error"
            elif a.paused_until:
                state = "paused"
            else:
                state = "ok"
            if a.test_mode:
                state += ",test"
            self.stdout.write(
                f"{a.tenant:20} {a.ad_account_id:18} {a.token_hint:7} {state:10} {a.name}"
            )
