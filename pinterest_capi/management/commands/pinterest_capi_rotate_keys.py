"""``manage.py pinterest_capi_rotate_keys``: re-encrypt every stored token with the first key.

Rotation runs while the worker keeps sending.  Each small batch of accounts is
locked (``select_for_update``) and rewritten in its own short transaction, so a
flush waits at most one batch for a row; a worker that read a token before the
rewrite still decrypts it, because the old key stays in ENCRYPTION_KEYS until
the last step of the procedure.  Tokens are re-encrypted inside
``cryptography`` (``MultiFernet.rotate``): the command never holds a plaintext
token, and prints ids only, never ciphertext.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.db import transaction
from django.db.models.functions import Now

from pinterest_capi import crypto
from pinterest_capi.exceptions import TokenDecryptionError
from pinterest_capi.models import AdAccount
from pinterest_capi.progress import Progress

UNDECRYPTABLE_REASON = "Token cannot be decrypted with any configured key (rotate_keys)"
# Flags that a decryptable token disproves (ours, and the one the flush sets on a wrong key).
DECRYPTION_FLAG_PREFIX = "Token cannot be decrypted"
SKIPPED_EXIT_CODE = 3


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the numbered procedure in --help kept as written."""


class Command(BaseCommand):
    help = """Re-encrypt every ad account's access token with the FIRST key of
PINTEREST_CAPI["ENCRYPTION_KEYS"].

Procedure for changing the encryption key (the worker may keep running):
  1. Generate a key (cryptography.fernet.Fernet.generate_key()) and put it
     FIRST in ENCRYPTION_KEYS; keep the old key after it.
  2. Deploy: every web and worker process must have [new, old] before step 3.
  3. Run this command.  Accounts are locked and rewritten a small batch at a
     time; both old and new ciphertexts decrypt meanwhile.
  4. When it reports 0 skipped accounts, remove the old key and deploy again.

An account whose token no key can decrypt is listed by id, flagged (its
authorisation error says why, in the admin) and left unchanged; the command
then exits with status 3.  Give it a new token (admin or
`pinterest_capi_account add`), or add back the key it was encrypted with,
and run this command again: a token that decrypts again is un-flagged."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report which key each token uses and which cannot be decrypted; change nothing.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=50,
            help="Accounts locked and rewritten per transaction (default 50).",
        )
        parser.add_argument(
            "--progress-every",
            type=int,
            default=100,
            help="Progress: a bar on a terminal, else a line after every N accounts "
            "(default 100; 0: never).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        if batch_size < 1:
            raise CommandError("--batch-size: must be 1 or more.")
        progress_every = max(0, options["progress_every"])
        dry_run = options["dry_run"]
        crypto.check_keys()  # a missing or malformed key stops here, before any row is touched

        ids = list(AdAccount.objects.order_by("pk").values_list("pk", flat=True))
        total = len(ids)
        verb = "Would re-encrypt" if dry_run else "Re-encrypting"
        self.stdout.write(f"{verb} the tokens of {total} ad accounts with the first key.")
        counts = {"rotated": 0, "on_old_key": 0, "unflagged": 0, "changed_meanwhile": 0}
        skipped: list[int] = []
        # Progress stays on stdout here (not stderr like the other commands): these lines were
        # this command's documented output before the shared bar existed.
        with Progress(
            total,
            stream=self.stdout,
            label="accounts",
            every=progress_every,
            enabled=progress_every > 0 and options["verbosity"] > 0,
        ) as progress:
            for start in range(0, total, batch_size):
                chunk = ids[start : start + batch_size]
                if dry_run:
                    self._inspect(chunk, counts, skipped)
                else:
                    self._rotate(chunk, counts, skipped)
                progress.advance(len(chunk), note=f"{len(skipped)} skipped")

        if dry_run:
            self.stdout.write(
                f"Dry run: {counts['rotated']} tokens decrypt ({counts['on_old_key']} with an "
                f"older key), {len(skipped)} cannot be decrypted. Nothing was changed."
            )
        else:
            self.stdout.write(
                f"Re-encrypted {counts['rotated']} tokens ({counts['on_old_key']} were on an "
                f"older key); {len(skipped)} skipped."
            )
            if counts["unflagged"]:
                self.stdout.write(
                    f"Cleared the decryption error of {counts['unflagged']} accounts whose token "
                    "decrypts again."
                )
            if counts["changed_meanwhile"]:
                self.stdout.write(
                    f"{counts['changed_meanwhile']} accounts got a new token while this ran "
                    "(already encrypted with the first key)."
                )
        if skipped:
            listed = ", ".join(str(pk) for pk in skipped)
            action = "would be flagged" if dry_run else "flagged and left unchanged"
            raise CommandError(
                f"{len(skipped)} ad accounts have a token that no configured key decrypts "
                f"({action}): ids {listed}. Give them a new token, then run this again.",
                returncode=SKIPPED_EXIT_CODE,
            )
        if not dry_run:
            self.stdout.write(
                self.style.SUCCESS(
                    "Every token is now encrypted with the first key: the other keys may be "
                    "removed from ENCRYPTION_KEYS."
                )
            )

    def _inspect(self, chunk: list[int], counts: dict[str, int], skipped: list[int]) -> None:
        rows = AdAccount.objects.filter(pk__in=chunk).order_by("pk")
        for pk, ciphertext in rows.values_list("pk", "token_ciphertext"):
            index = crypto.key_index(ciphertext)
            if index is None:
                skipped.append(pk)
                continue
            counts["rotated"] += 1
            counts["on_old_key"] += index > 0

    def _rotate(self, chunk: list[int], counts: dict[str, int], skipped: list[int]) -> None:
        """Lock one small batch, rewrite its ciphertexts, commit: the worker waits briefly."""
        with transaction.atomic():
            rows = (
                AdAccount.objects.select_for_update()
                .filter(pk__in=chunk)
                .order_by("pk")
                .values_list("pk", "token_ciphertext", "auth_error")
            )
            for pk, ciphertext, auth_error in rows:
                # Conditional writes: on a backend where select_for_update is a no-op, a token
                # replaced meanwhile (admin, account command) is left as it is, already current.
                current = AdAccount.objects.filter(pk=pk, token_ciphertext=ciphertext)
                try:
                    index = crypto.key_index(ciphertext)
                    new_ciphertext = crypto.rotate(ciphertext)
                except TokenDecryptionError:
                    if current.update(
                        auth_error=UNDECRYPTABLE_REASON,
                        auth_error_at=Now(),
                        last_error_at=Now(),
                        last_error=UNDECRYPTABLE_REASON,
                        updated_at=Now(),
                    ):
                        skipped.append(pk)
                    else:
                        counts["changed_meanwhile"] += 1
                    continue
                updates: dict[str, Any] = {"token_ciphertext": new_ciphertext, "updated_at": Now()}
                unflag = auth_error.startswith(DECRYPTION_FLAG_PREFIX)
                if unflag:
                    updates.update(auth_error="", auth_error_at=None)
                if current.update(**updates):
                    counts["rotated"] += 1
                    counts["on_old_key"] += bool(index)
                    counts["unflagged"] += unflag
                else:
                    counts["changed_meanwhile"] += 1
