"""Signal receivers: the shop's signals → :func:`pinterest_capi.tracking.track`.

Placeholder until the recording layer lands.
"""


def connect_configured_signals() -> None:
    return None
