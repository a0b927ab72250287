"""HTTP to Pinterest (or the sandbox): one pooled httpx client, results as values.

The client knows nothing of the database or of retry policy.  It returns a
:class:`SendResult` describing what happened on the wire; :mod:`delivery`
decides what that means.  httpx has per-phase timeouts but no overall one, so
responses are streamed and abandoned once the request's deadline passes (a
server that drips its answer one byte at a time cannot hold a worker past its
lease).
"""

from __future__ import annotations

import email.utils
import json
import os
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from django.views.decorators.debug import sensitive_variables

from .conf import app_settings

EXCERPT_CHARS = 1000
USER_AGENT = "django-pinterest-capi"


@dataclass(frozen=True)
class SendResult:
    """What one request did: a status and body, or the transport error that stopped it."""

    status_code: int | None
    body: Any
    excerpt: str
    duration_ms: int
    error: str | None = None  # "connect", "connect_timeout", "read_timeout", "deadline", "protocol"
    maybe_sent: bool = True  # False only when the request surely never reached the server
    retry_after: float | None = None  # seconds, from a Retry-After header

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def message(self) -> str:
        """Pinterest's ``message`` field, or a short description of the transport error."""
        if isinstance(self.body, dict) and self.body.get("message"):
            return str(self.body["message"])
        if self.error:
            return _ERROR_TEXT.get(self.error, self.error)
        return self.excerpt[:200]


_ERROR_TEXT = {
    "connect": "could not connect",
    "connect_timeout": "connect timed out",
    "read_timeout": "read timed out",
    "deadline": "request abandoned at its overall deadline",
    "protocol": "connection closed without a valid response",
    "pool_timeout": "no free connection in the pool",
    "invalid_url": "API_BASE_URL is not a valid URL",
}

_local = threading.local()
_lock = threading.Lock()
# (process, lane or thread, "https" or "http") -> client
_clients: dict[tuple[int, int | str, str], httpx.Client] = {}


_ssl_contexts: dict[int, ssl.SSLContext] = {}


def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process, shared by its clients.

    Loading the CA bundle takes tens of milliseconds, and every thread's client (each flush
    lane's) would load its own.
    """
    pid = os.getpid()
    context = _ssl_contexts.get(pid)
    if context is None:
        context = _ssl_contexts[pid] = httpx.create_ssl_context()
    return context


def _no_ca_context() -> ssl.SSLContext:
    """The TLS context of a client that only ever sends plain HTTP (the sandbox's URLs).

    Such a client never negotiates TLS, so it does without the CA bundle, whose loading costs
    35-40 ms of CPU per process: every flush run as a command against the sandbox, every test
    process and the demo's worker paid it for nothing.  It still verifies
    (the ``PROTOCOL_TLS_CLIENT`` defaults) and trusts no certificate, so a TLS connection it
    were ever asked to make would fail rather than go unverified.
    """
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _scheme(url: str | None) -> str:
    """``"http"`` only for a plain-HTTP URL; anything else gets the verifying client."""
    url = str(app_settings.API_BASE_URL) if url is None else url
    return "http" if url[:7].lower() == "http://" else "https"


def get_client(url: str | None = None) -> httpx.Client:
    """The process's pooled client for ``url``'s scheme (default: ``API_BASE_URL``'s).

    One per thread, or per flush lane (a thread inside :func:`lane` uses that lane's client),
    and a new one after fork.  A plain-HTTP URL gets a client without the CA bundle
    (:func:`_no_ca_context`); every other URL gets one that verifies with it.
    """
    scheme = _scheme(url)
    key = (os.getpid(), getattr(_local, "lane", None) or threading.get_ident(), scheme)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = httpx.Client(
                    timeout=_timeout(),
                    limits=httpx.Limits(max_connections=10, max_keepalive_connections=10),
                    headers={"User-Agent": USER_AGENT},
                    verify=_ssl_context() if scheme == "https" else _no_ca_context(),
                )
                _clients[key] = client
    return client


@contextmanager
def lane(number: int) -> Iterator[None]:
    """Inside this block, this thread sends with flush lane ``number``'s client.

    A flush lane runs on a thread of its own that ends with the flush; its client, kept by
    lane number for the process, does not: the next flush's lane of that number finds its
    connections to Pinterest open, where a new client per flush meant a new TCP connection
    and TLS handshake per lane for every flush (a worker flushes after every few commits).
    Two flushes at once in one process share the lanes' clients (an httpx client may be used
    from several threads).
    """
    previous = getattr(_local, "lane", None)
    _local.lane = f"lane-{number}"
    try:
        yield
    finally:
        _local.lane = previous


def close_thread_client() -> None:
    """Close this thread's own client, if it has one (a thread that ends)."""
    with _lock:
        mine = [(os.getpid(), threading.get_ident(), scheme) for scheme in ("http", "https")]
        clients = [_clients.pop(key) for key in mine if key in _clients]
    for client in clients:
        client.close()


def close_clients() -> None:
    """Close every pooled client of this process (tests, shutdown)."""
    with _lock:
        for key, client in list(_clients.items()):
            if key[0] == os.getpid():
                client.close()
            del _clients[key]


def _timeout() -> httpx.Timeout:
    deadline = float(app_settings.REQUEST_DEADLINE)
    return httpx.Timeout(
        connect=min(float(app_settings.CONNECT_TIMEOUT), deadline),
        read=min(float(app_settings.READ_TIMEOUT), deadline),
        write=min(float(app_settings.READ_TIMEOUT), deadline),
        pool=min(float(app_settings.CONNECT_TIMEOUT), deadline),
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def events_url(ad_account_id: str, *, test_mode: bool = False) -> str:
    base = str(app_settings.API_BASE_URL).rstrip("/")
    url = f"{base}/ad_accounts/{ad_account_id}/events"
    return f"{url}?test=true" if test_mode else url


@sensitive_variables("token")
def post_events(
    ad_account_id: str, token: str, body: bytes, *, test_mode: bool = False
) -> SendResult:
    """POST one ``{"data": [...]}`` body; never raises for HTTP or network trouble."""
    return _request(
        "POST",
        events_url(ad_account_id, test_mode=test_mode),
        token,
        content=body,
        headers={"Content-Type": "application/json"},
    )


@sensitive_variables("token")
def get_conversion_tags(ad_account_id: str, token: str) -> SendResult:
    """GET the account's Pinterest Tags: a cheap check of a token and an ad account id."""
    base = str(app_settings.API_BASE_URL).rstrip("/")
    return _request("GET", f"{base}/ad_accounts/{ad_account_id}/conversion_tags", token)


class _BearerAuth(httpx.Auth):
    """Adds the bearer token per request; its repr never shows the token.

    Passing the token as an ``Authorization`` entry of a plain dict would put it
    in httpx's frames, where Django's error reports can print it.
    """

    @sensitive_variables("token")
    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request):
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "<BearerAuth ********>"


@sensitive_variables("token")
def _request(
    method: str,
    url: str,
    token: str,
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> SendResult:
    auth = _BearerAuth(token)
    deadline_s = float(app_settings.REQUEST_DEADLINE)
    started = time.monotonic()
    deadline = started + deadline_s

    def done(**kwargs: Any) -> SendResult:
        kwargs.setdefault("body", None)
        kwargs.setdefault("excerpt", "")
        return SendResult(duration_ms=int((time.monotonic() - started) * 1000), **kwargs)

    try:
        with get_client(url).stream(
            method, url, content=content, headers=headers, auth=auth, timeout=_timeout()
        ) as response:
            chunks: list[bytes] = []
            for chunk in response.iter_raw():
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    return done(status_code=None, error="deadline")
            raw = b"".join(chunks)
            text = raw.decode("utf-8", errors="replace")
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            return done(
                status_code=response.status_code,
                body=body,
                excerpt=text[:EXCERPT_CHARS],
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError):
        # A mistyped API_BASE_URL: nothing was sent; say so instead of raising.
        return done(status_code=None, error="invalid_url", maybe_sent=False)
    except httpx.ConnectTimeout:
        return done(status_code=None, error="connect_timeout", maybe_sent=False)
    except httpx.PoolTimeout:
        return done(status_code=None, error="pool_timeout", maybe_sent=False)
    except httpx.ConnectError:
        return done(status_code=None, error="connect", maybe_sent=False)
    except httpx.TimeoutException:
        return done(status_code=None, error="read_timeout")
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.CloseError):
        return done(status_code=None, error="protocol")
    except httpx.TransportError:
        return done(status_code=None, error="protocol")
