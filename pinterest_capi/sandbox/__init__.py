"""A local stand-in for Pinterest's Conversions API v5: a real HTTP server, no Django.

Used by the app's tests (in-process, port 0), the demo (``manage.py pinterest_capi_sandbox``)
and the benchmarks::

    from pinterest_capi.sandbox import SandboxServer, Fault

    with SandboxServer(accounts={"549755885175": "sandbox-token-abc"}) as srv:
        srv.faults.add(Fault(status=503, times=3))
        ...  # point PINTEREST_CAPI["API_BASE_URL"] at srv.url
        assert srv.ledger.event_ids() == [...]
"""

from .faults import Fault, FaultSet
from .ledger import Ledger
from .server import SandboxServer

__all__ = ["Fault", "FaultSet", "Ledger", "SandboxServer"]
