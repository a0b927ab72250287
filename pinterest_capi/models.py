"""The three tables: ad accounts, the outbox of events, and delivery attempts.

Rows here are written by :mod:`pinterest_capi.outbox` (recording, resend) and
:mod:`pinterest_capi.delivery` (claim, results); other code reads them.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import ExpressionWrapper, Q
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from . import crypto

ad_account_id_validator = RegexValidator(
    r"^\d{1,18}$", _("An ad account id is 1 to 18 digits."), code="invalid_ad_account_id"
)
tag_id_validator = RegexValidator(
    r"^\d{1,32}$", _("A Pinterest Tag id is digits only."), code="invalid_tag_id"
)


class AdAccountQuerySet(models.QuerySet):
    def for_tenant(self, tenant: str) -> AdAccountQuerySet:
        return self.filter(tenant=tenant)

    def active(self) -> AdAccountQuerySet:
        return self.filter(active=True)

    def sendable(self) -> AdAccountQuerySet:
        """Accounts a flush may send for now: active, no auth problem, not paused (DB clock)."""
        return self.filter(active=True, auth_error="").filter(
            Q(paused_until__isnull=True) | Q(paused_until__lte=Now())
        )


class AdAccount(models.Model):
    """One Pinterest ad account of a tenant, with its encrypted access token."""

    tenant = models.CharField(
        _("tenant"),
        max_length=100,
        db_index=True,
        help_text=_("The shop (tenant) key events are recorded under."),
    )
    name = models.CharField(_("name"), max_length=200, blank=True)
    ad_account_id = models.CharField(
        _("ad account id"), max_length=18, validators=[ad_account_id_validator]
    )
    tag_id = models.CharField(
        _("Pinterest Tag id"),
        max_length=32,
        blank=True,
        validators=[tag_id_validator],
        help_text=_(
            "The id of this ad account's Pinterest Tag (digits), rendered by the "
            "{% pinterest_tag_base %} template tag. Verify connection fills it in when "
            "Pinterest lists one Tag."
        ),
    )
    token_ciphertext = models.TextField(_("encrypted access token"), editable=False)
    token_last4 = models.CharField(_("token ends with"), max_length=4, editable=False)
    active = models.BooleanField(_("active"), default=True)
    test_mode = models.BooleanField(
        _("test mode"),
        default=False,
        help_text=_("Send with ?test=true: Pinterest validates events but does not record them."),
    )
    paused_until = models.DateTimeField(_("paused until"), null=True, blank=True)
    pause_reason = models.CharField(_("pause reason"), max_length=500, blank=True)
    auth_error = models.CharField(
        _("authorisation error"),
        max_length=500,
        blank=True,
        help_text=_("Set when Pinterest rejects the token or the account; a new token clears it."),
    )
    auth_error_at = models.DateTimeField(_("authorisation error at"), null=True, blank=True)
    last_success_at = models.DateTimeField(_("last success"), null=True, blank=True)
    last_error_at = models.DateTimeField(_("last error"), null=True, blank=True)
    last_error = models.CharField(_("last error message"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = AdAccountQuerySet.as_manager()

    class Meta:
        verbose_name = _("ad account")
        verbose_name_plural = _("ad accounts")
        ordering = ["tenant", "name", "ad_account_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "ad_account_id"], name="pinterest_capi_unique_tenant_account"
            )
        ]
        permissions = [("verify_adaccount", "Can verify the connection of an ad account")]

    def __str__(self) -> str:
        label = self.name or self.ad_account_id
        return f"{label} ({self.tenant})"

    def __repr__(self) -> str:  # never shows the token
        return f"<AdAccount {self.pk} tenant={self.tenant!r} ad_account_id={self.ad_account_id!r}>"

    @sensitive_variables("token")
    def set_token(self, token: str) -> None:
        """Encrypt and store ``token``; a new token clears an authorisation error."""
        token = (token or "").strip()
        if not token:
            raise ValueError("access token: must not be empty")
        self.token_ciphertext = crypto.encrypt(token)
        self.token_last4 = token[-4:]
        self.auth_error = ""
        self.auth_error_at = None

    @sensitive_variables()
    def get_token(self) -> str:
        """Decrypt the token (raises TokenDecryptionError on a wrong key)."""
        return crypto.decrypt(self.token_ciphertext)

    @property
    def token_hint(self) -> str:
        return f"…{self.token_last4}" if self.token_last4 else ""


class EventStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    IN_FLIGHT = "in_flight", _("in flight")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")


#: The statuses of an event still to be delivered: the rows the queue table (QueuedEvent) holds.
QUEUED_STATUSES = (EventStatus.PENDING, EventStatus.IN_FLIGHT)


def lease_free() -> Q:
    """Rows no live lease holds: pending, or in flight with a lapsed lease (DB clock)."""
    return Q(status=EventStatus.PENDING) | Q(
        status=EventStatus.IN_FLIGHT, lease_expires_at__lt=Now()
    )


def claimable() -> Q:
    """Rows a flush may claim now (DB clock): their queue entry is due, and no lease holds them.

    The queue entry (:class:`QueuedEvent`, a join) is due when the row is pending and due or
    its lease lapsed; ``lease_free()`` repeats the outbox row's own state, which a locking read
    re-checks on the row's newest version.
    """
    return Q(queue_entry__next_attempt_at__lte=Now()) & lease_free()


class OutboxEventQuerySet(models.QuerySet):
    def due(self) -> OutboxEventQuerySet:
        """Rows a flush may claim now, by the database clock: pending and due, or a lapsed lease."""
        return self.filter(claimable())

    def for_tenant(self, tenant: str) -> OutboxEventQuerySet:
        return self.filter(account__tenant=tenant)


class OutboxEvent(models.Model):
    """One event for one ad account, written in the shop's transaction, sent later."""

    # No index of its own: (account, id) leads with it, and every index is one more entry
    # written for each recorded event.
    account = models.ForeignKey(
        AdAccount,
        on_delete=models.CASCADE,
        related_name="events",
        verbose_name=_("ad account"),
        db_index=False,
    )
    event_id = models.CharField(_("event id"), max_length=255)
    event_name = models.CharField(_("event name"), max_length=64)
    event_time = models.BigIntegerField(_("event time (Unix seconds)"))
    order_id = models.CharField(_("order id"), max_length=255, blank=True)
    # The complete API event, as compact JSON text ready to send (PII already hashed).
    payload = models.TextField(_("payload"))
    status = models.CharField(
        _("status"), max_length=16, choices=EventStatus.choices, default=EventStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), db_default=Now())
    lease_owner = models.CharField(_("lease owner"), max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    warning = models.TextField(_("Pinterest warning"), blank=True)
    created_at = models.DateTimeField(_("recorded at"), db_default=Now(), db_index=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # Failed, computed by the database from ``status``: the partial index of failed rows (a
    # small part of the table, found without reading the sent ones) reads this column, not
    # ``status``, so a claim (pending -> in flight) or a delivery (-> sent) leaves every indexed
    # value of the row unchanged and PostgreSQL rewrites it in place (a HOT update: no index
    # entries written) — see Meta.
    failed = models.GeneratedField(
        expression=ExpressionWrapper(
            Q(status=EventStatus.FAILED), output_field=models.BooleanField()
        ),
        output_field=models.BooleanField(),
        db_persist=True,
        verbose_name=_("failed"),
    )

    objects = OutboxEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("outbox event")
        verbose_name_plural = _("outbox events")
        ordering = ["-id"]
        constraints = [
            # One index for two jobs: the same event recorded twice for an account is refused
            # (the recording's ON CONFLICT DO NOTHING), and with event_id first and
            # varchar_pattern_ops (PostgreSQL) it serves the admin's event-id search, exact
            # or by its beginning.  A separate event_id index cost every write one more entry.
            models.UniqueConstraint(
                fields=["event_id", "account", "event_name"],
                name="pcapi_event_unique_event_id",
                opclasses=["varchar_pattern_ops", "int8_ops", "varchar_ops"],
            )
        ]
        indexes = [
            # No index reads ``status``, the lease columns, ``next_attempt_at`` or ``sent_at``:
            # the claim and the delivery are then HOT updates on PostgreSQL (with the table's
            # fillfactor, set by migration 0008).  The queue of rows to deliver is a table of
            # its own (QueuedEvent), kept by triggers; failed rows have this partial index.
            models.Index(
                fields=["account", "id"],
                condition=Q(failed=True),
                name="pcapi_event_failed_idx",
            ),
            # The admin's exact order_id lookup (db_index=True would add a second,
            # pattern-ops copy on PostgreSQL that no query uses).
            models.Index(fields=["order_id"], name="pcapi_event_order_id_idx"),
            # The admin changelist: each filter followed by its default ordering (-id), so a
            # filtered page is an index range read backwards, not a sort of every match.
            models.Index(fields=["event_name", "id"], name="pcapi_event_name_id_idx"),
            models.Index(fields=["account", "id"], name="pcapi_event_account_id_idx"),
        ]
        permissions = [("resend_outboxevent", "Can resend outbox events")]

    def __str__(self) -> str:
        return f"{self.event_name} {self.event_id}"

    @property
    def payload_dict(self) -> dict[str, Any]:
        return json.loads(self.payload)


class QueuedEvent(models.Model):
    """An outbox row still to be delivered (pending or in flight), and when a flush may take it.

    The queue the flush claims from, as a narrow table beside the outbox rather than a partial
    index on it.  With a partial index of queued rows each delivery changed an indexed value,
    and PostgreSQL then wrote a new entry in every index of the (wide, many-indexed) outbox
    row; here a delivery deletes one narrow row and rewrites the outbox row in place.

    ``next_attempt_at`` is when a flush may claim the row: the outbox row's own
    ``next_attempt_at`` while it is pending, the end of the lease while it is in flight (the
    claim moves it, :mod:`pinterest_capi.delivery.claim`), so every due row of this table is
    claimable and the claim reads no row it cannot take.

    Kept by database triggers (:mod:`pinterest_capi.queue_triggers`): recording, requeueing,
    retrying, releasing or deleting an outbox row moves its entry in the same transaction,
    whoever writes the row (the flush, the admin, a command, raw SQL).  The flush's own two
    transitions, claimed and delivered, move the entries itself with one statement per batch.
    """

    event = models.OneToOneField(
        OutboxEvent,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="queue_entry",
        db_constraint=False,  # written by a trigger for a row that exists
        verbose_name=_("outbox event"),
    )
    # The outbox row's account, so the claim picks rows of sendable accounts from this table
    # alone (the outbox's indexes never lead the claim).
    account = models.ForeignKey(
        AdAccount,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
        verbose_name=_("ad account"),
    )
    next_attempt_at = models.DateTimeField(_("claimable at"))

    class Meta:
        verbose_name = _("queued event")
        verbose_name_plural = _("queued events")
        indexes = [
            # The claim reads this in order and stops after CLAIM_SIZE rows.
            models.Index(fields=["next_attempt_at", "event"], name="pcapi_queue_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} claimable at {self.next_attempt_at:%Y-%m-%d %H:%M:%S}"


class DeliveryDashboard(OutboxEvent):
    """No table: the admin's "Delivery dashboard" entry (figures over the outbox).

    A proxy gives the dashboard a sidebar entry and a permission of its own
    (``view_deliverydashboard``) without touching any other admin or site.
    """

    class Meta:
        proxy = True
        verbose_name = _("delivery dashboard")
        verbose_name_plural = _("delivery dashboard")
        default_permissions = ("view",)


class AttemptOutcome(models.TextChoices):
    SUCCESS = "success", _("all processed")
    PARTIAL = "partial", _("some events failed")
    REJECTED = "rejected", _("request rejected (400)")
    AUTH_ERROR = "auth_error", _("token or account refused (401/403/404)")
    RATE_LIMITED = "rate_limited", _("rate limited (429)")
    SERVER_ERROR = "server_error", _("server error (5xx)")
    TIMEOUT = "timeout", _("timed out")
    CONNECTION_ERROR = "connection_error", _("connection error")
    CONFIG_ERROR = "config_error", _("not sent: configuration problem")
    UNEXPECTED = "unexpected", _("unexpected response")


class DeliveryAttempt(models.Model):
    """One request to Pinterest: a batch of events and what came back (never headers or token)."""

    account = models.ForeignKey(
        AdAccount, on_delete=models.CASCADE, related_name="attempts", verbose_name=_("ad account")
    )
    started_at = models.DateTimeField(_("started at"), db_index=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    http_status = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=AttemptOutcome.choices)
    test_mode = models.BooleanField(_("test mode"), default=False)
    num_events = models.PositiveIntegerField(_("events sent"), default=0)
    num_received = models.PositiveIntegerField(_("received"), null=True, blank=True)
    num_processed = models.PositiveIntegerField(_("processed"), null=True, blank=True)
    num_failed = models.PositiveIntegerField(_("failed"), default=0)
    error = models.CharField(_("error"), max_length=500, blank=True)
    response_excerpt = models.TextField(_("response excerpt"), blank=True)
    events = models.ManyToManyField(
        OutboxEvent, through="AttemptEvent", related_name="delivery_attempts", blank=True
    )

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} · {self.num_events} events"


class AttemptEvent(models.Model):
    """What one attempt meant for one event: Pinterest's per-event answer, or the batch outcome."""

    # No database-level foreign keys (both columns stay indexed): the flush writes 1,000 of
    # these per request, and checking two constraints per row at commit doubled the cost of
    # writing them (14 -> 28 ms per 1,000 on PostgreSQL).  Both rows are written by the same
    # transaction that writes these, and deletes cascade here through Django's on_delete.
    attempt = models.ForeignKey(
        DeliveryAttempt, on_delete=models.CASCADE, related_name="results", db_constraint=False
    )
    event = models.ForeignKey(
        OutboxEvent, on_delete=models.CASCADE, related_name="results", db_constraint=False
    )
    result = models.CharField(_("result"), max_length=20)
    message = models.TextField(_("message"), blank=True)

    class Meta:
        verbose_name = _("event result")
        verbose_name_plural = _("event results")

    def __str__(self) -> str:
        return f"{self.result}: {self.message}" if self.message else self.result


class RequestWindow(models.Model):
    """Requests sent to one ad account in one 10-second window (the shared rate budget)."""

    account = models.ForeignKey(AdAccount, on_delete=models.CASCADE, related_name="+")
    window = models.BigIntegerField(_("window start (Unix seconds)"))
    count = models.PositiveIntegerField(_("requests"), default=0)

    class Meta:
        verbose_name = _("request window")
        verbose_name_plural = _("request windows")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "window"], name="pinterest_capi_unique_request_window"
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_id}@{self.window}: {self.count}"


class ApiKeyQuerySet(models.QuerySet):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(active=True)


class ApiKey(models.Model):
    """A tenant's key for the REST API's ``POST …/events/`` (trusted server-side callers).

    Only a SHA-256 digest of the key is stored: the key is shown once when it is
    made (see :mod:`pinterest_capi.apikeys`) and cannot be read back.  ``prefix``
    is the public part of the key, unique, used to find the row without scanning
    digests; it is also what lists show.  A revoked key stays (for the record) but
    never authenticates again.
    """

    tenant = models.CharField(
        _("tenant"),
        max_length=100,
        db_index=True,
        help_text=_("Events sent with this key are recorded for this tenant's ad accounts."),
    )
    name = models.CharField(
        _("name"), max_length=200, help_text=_("Who or what uses the key, e.g. “ERP sync”.")
    )
    prefix = models.CharField(_("key prefix"), max_length=16, unique=True, editable=False)
    key_hash = models.CharField(_("SHA-256 of the key"), max_length=64, editable=False)
    active = models.BooleanField(_("active"), default=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["tenant", "name", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.tenant}, {self.prefix}…)"

    def __repr__(self) -> str:  # never the digest
        return f"<ApiKey {self.pk} tenant={self.tenant!r} prefix={self.prefix!r}>"
