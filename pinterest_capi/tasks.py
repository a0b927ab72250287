"""Thin django-q2 entry points.  Placeholder until the delivery layer lands."""


def nudge_flush() -> None:
    return None
