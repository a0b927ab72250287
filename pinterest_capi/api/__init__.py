"""The REST API (Django REST framework), mounted by ``pinterest_capi.urls`` under ``api/v1/``.

Three ways in:

* ``POST events/`` — trusted server-side callers of one tenant, with a per-tenant
  :class:`~pinterest_capi.models.ApiKey` (``Authorization: Bearer pcapi_…``).  Events in
  Pinterest's own shape are judged one by one by :mod:`pinterest_capi.events` and recorded
  through :mod:`pinterest_capi.outbox` (see :mod:`.ingest`).
* ``beacon/`` (mounted beside ``api/v1/``, :mod:`.beacon`) — the storefront's browser events
  (page_visit, search, view_category) with a browser-made event_id, same-origin checked.
* ``ops/…`` — staff users (session or HTTP basic auth) with the admin's model permissions
  and tenant scoping (:mod:`pinterest_capi.permissions`): events, their attempts, resend,
  account health.

Every view sets its own authentication, permission, throttle, parser, renderer, pagination
and schema classes (:class:`.views.base.AppAPIView`): the shop's ``REST_FRAMEWORK``
settings never change how this API behaves.  ``schema/`` serves the OpenAPI document
(drf-spectacular).
"""
