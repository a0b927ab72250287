"""Control endpoints under ``/_sandbox/``: drive the sandbox from another process (demo, benches).

No Pinterest auth here: the sandbox listens on loopback and its tokens are fake.  Nothing here
ever returns a token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .api import Reply, json_reply, parse_json
from .faults import Fault

if TYPE_CHECKING:  # pragma: no cover
    from .server import SandboxServer


def _error(status: int, message: str) -> Reply:
    return json_reply(status, {"code": status, "message": message})


def handle(
    sandbox: SandboxServer, method: str, path: str, query: dict[str, str], body: bytes
) -> Reply:
    """Answer one control request."""
    route = path[len("/_sandbox/") :].rstrip("/")
    try:
        payload = parse_json(body) if body else None
    except ValueError as exc:
        return _error(400, f"Invalid JSON body: {exc}")

    if route == "health" and method == "GET":
        return json_reply(
            200,
            {
                "status": "ok",
                "url": sandbox.url,
                "ad_account_ids": sorted(sandbox.accounts_snapshot()),
                "accept_any_token": sandbox.accept_any_token,
                "faults": len(sandbox.faults),
            },
        )
    if route == "ledger" and method == "GET":
        account = query.get("ad_account_id")
        test = {"true": True, "false": False}.get(query.get("test", "").lower())
        return json_reply(
            200,
            {
                "events": sandbox.ledger.events(account, test),
                "requests": sandbox.ledger.requests(account),
            },
        )
    if route == "faults":
        if method == "GET":
            return json_reply(200, {"faults": [f.to_json() for f in sandbox.faults.list()]})
        if method == "DELETE":
            return json_reply(200, {"cleared": sandbox.faults.clear()})
        if method == "POST":
            try:
                fault = sandbox.faults.add(Fault.from_json(payload))
            except ValueError as exc:
                return _error(400, str(exc))
            return json_reply(201, {"fault": fault.describe()})
    if route == "accounts" and method == "POST":
        if not isinstance(payload, dict):
            return _error(400, 'expected {"ad_account_id": "...", "token": "..."}')
        try:
            sandbox.add_account(payload.get("ad_account_id"), payload.get("token"))
        except (TypeError, ValueError) as exc:
            return _error(400, str(exc))
        return json_reply(201, {"ad_account_id": payload["ad_account_id"]})
    if route.startswith("accounts/") and method == "DELETE":
        account = route[len("accounts/") :]
        return json_reply(200, {"removed": sandbox.remove_account(account)})
    if route == "reset" and method == "POST":
        sandbox.reset()
        return json_reply(200, {"status": "reset"})
    return _error(404, f"No control endpoint {method} {path}")


def describe_routes() -> list[str]:
    """The control routes, for help texts."""
    return [
        "GET /_sandbox/health",
        "GET /_sandbox/ledger[?ad_account_id=&test=]",
        "GET|POST|DELETE /_sandbox/faults",
        "POST /_sandbox/accounts, DELETE /_sandbox/accounts/{id}",
        "POST /_sandbox/reset",
    ]
