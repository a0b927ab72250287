"""The sandbox HTTP server: stdlib ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive.

Plain Python, no Django: tests start it in-process on port 0, the demo runs it through the
``pinterest_capi_sandbox`` command, benchmarks hit it with pooled connections.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import api, control
from .faults import FaultSet, error_body
from .ledger import Ledger
from .validation import DEFAULT_MAX_EVENT_AGE, DEFAULT_MAX_FUTURE_SKEW

logger = logging.getLogger("pinterest_capi.sandbox")

MAX_BODY_BYTES = 32 * 1024 * 1024  # far above any real batch; protects the sandbox's memory
_is_account_id = re.compile(r"[0-9]{1,18}").fullmatch


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so pooled clients reuse connections
    server_version = "PinterestCapiSandbox/1.0"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms Nagle stalls
    timeout = 300  # an idle keep-alive connection's thread ends after this
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the stdlib's stderr access log; :meth:`_dispatch` logs one line itself."""

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug("sandbox http: " + format, *args)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = lambda self: self._dispatch()  # noqa: E731

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked); ``None`` after answering 400/413."""
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks, total = [], 0
                while True:
                    size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(chunks)
                    total += size
                    if total > MAX_BODY_BYTES:
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            else:
                length = int(self.headers.get("Content-Length") or 0)
                if length <= MAX_BODY_BYTES:
                    return self.rfile.read(length) if length > 0 else b""
            reply = api.json_reply(413, error_body(413))
        except ValueError:  # malformed Content-Length or chunk size
            reply = api.json_reply(400, error_body(400, "Malformed request framing"))
        self.close_connection = True  # the rest of the body is unread: this connection is done
        self._send(reply)
        return None

    def _dispatch(self) -> None:
        started = time.perf_counter()
        sandbox: SandboxServer = self.server.sandbox
        try:
            body = self._read_body()
            if body is None:
                return
            split = urlsplit(self.path)
            query = dict(parse_qsl(split.query))
            if split.path.startswith("/_sandbox/"):
                reply = control.handle(sandbox, self.command, split.path, query, body)
                self._send(reply)
                return
            test = query.get("test", "").lower() == "true"
            reply = api.handle(
                sandbox,
                self.command,
                split.path,
                test,
                self.headers,
                body,
                client_port=self.client_address[1],
            )
            self._deliver(reply, sandbox)
            logger.info("%s %.1fms", reply.summary, (time.perf_counter() - started) * 1000)
        except (ConnectionError, TimeoutError) as exc:  # the client went away
            logger.debug("sandbox connection closed: %s", type(exc).__name__)
            self.close_connection = True
        except Exception:
            logger.exception("sandbox error on %s %s", self.command, urlsplit(self.path).path)
            self.close_connection = True
            try:
                self._send(api.json_reply(500, {"code": 500, "message": "Sandbox internal error"}))
            except OSError:
                pass

    def _deliver(self, reply: api.Reply, sandbox: SandboxServer) -> None:
        """Carry out the timing side of a fault (hold, latency, drop, drip), then answer."""
        fault = reply.fault
        if fault is None:
            self._send(reply)
            return
        stopping = sandbox.stopping
        if fault.hold is not None:
            while not fault.hold.wait(0.05):
                if stopping.is_set():
                    break
        if fault.latency:
            stopping.wait(fault.latency)
        if fault.drop:
            self.close_connection = True  # read, processed, no answer: "the answer was lost"
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._send(reply, drip=fault.drip, stopping=stopping)

    def _send(
        self,
        reply: api.Reply,
        drip: float | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        if not drip:
            # Headers and body in one write (end_headers' buffer, then its flush): one send
            # per answer instead of two.
            self._headers_buffer.extend((b"\r\n", reply.body))
            self.flush_headers()
            return
        self.end_headers()
        for i in range(len(reply.body)):  # slow drip: one byte every `drip` seconds
            if stopping is not None and stopping.wait(drip):
                self.close_connection = True
                return
            self.wfile.write(reply.body[i : i + 1])


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._conn_lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def close_connections(self) -> None:
        """Shut open keep-alive connections so a stopped sandbox really stops answering."""
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class SandboxServer:
    """A local Pinterest Conversions API (v5) with a ledger and fault injection.

    ``accounts`` maps ad_account_id → bearer token (fake ones).  ``accept_any_token`` accepts
    any bearer token for any well-formed ad_account_id (handy for demos).  ``clock`` (Unix
    seconds) and the event_time window are adjustable so clock-skew tests can move "Pinterest's"
    time.  Start with :meth:`start` or ``with SandboxServer(...) as srv:``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        accounts: dict[str, str] | None = None,
        accept_any_token: bool = False,
        *,
        clock: Callable[[], float] = time.time,
        max_event_age: float = DEFAULT_MAX_EVENT_AGE,
        max_future_skew: float = DEFAULT_MAX_FUTURE_SKEW,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.accept_any_token = accept_any_token
        self.clock = clock
        self.max_event_age = max_event_age
        self.max_future_skew = max_future_skew
        self.ledger = Ledger()
        self.faults = FaultSet()
        self.stopping = threading.Event()
        self._accounts: dict[str, str] = {}
        for ad_account_id, token in (accounts or {}).items():
            self.add_account(ad_account_id, token)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- accounts (copy-on-write: request threads read a snapshot without locking) --------
    def add_account(self, ad_account_id: str, token: str) -> None:
        """Accept ``token`` for ``ad_account_id`` (replacing its previous token)."""
        if not isinstance(ad_account_id, str) or not _is_account_id(ad_account_id):
            raise ValueError("ad_account_id must be a string of 1 to 18 digits")
        if not isinstance(token, str) or not token.strip():
            raise ValueError("token must be a non-empty string")
        self._accounts = {**self._accounts, ad_account_id: token.strip()}

    def remove_account(self, ad_account_id: str) -> bool:
        """Forget an account (its token then answers 401); True if it existed."""
        accounts = dict(self._accounts)
        existed = accounts.pop(ad_account_id, None) is not None
        self._accounts = accounts
        return existed

    def accounts_snapshot(self) -> dict[str, str]:
        """The current account → token mapping (internal; never returned over HTTP)."""
        return self._accounts

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> SandboxServer:
        """Bind and serve on a daemon thread; returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError("sandbox already started")
        self.stopping.clear()
        self._httpd = _HTTPServer((self.host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"pinterest-capi-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("Pinterest sandbox listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and release held/dripping requests. Idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        logger.info("Pinterest sandbox stopped")

    def reset(self) -> None:
        """Clear the ledger and the faults (accounts stay)."""
        self.ledger.clear()
        self.faults.clear()

    def __enter__(self) -> SandboxServer:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the real one when started with port 0)."""
        if self._httpd is None:
            raise RuntimeError("sandbox not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The API base URL to configure the app with, e.g. ``http://127.0.0.1:8765/v5``."""
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/v5"

    def __repr__(self) -> str:  # never shows tokens
        state = self.url if self._httpd is not None else "stopped"
        return f"<SandboxServer {state} accounts={sorted(self._accounts)}>"
