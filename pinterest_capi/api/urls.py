"""The API's routes (mounted under ``api/v1/`` by ``pinterest_capi.urls``)."""

from django.urls import path

from . import views

# Everything the OpenAPI document describes (the schema view itself is left out of it).
documented_urlpatterns = [
    path("events/", views.EventIngestView.as_view(), name="api-events"),
    path("ops/events/", views.EventListView.as_view(), name="api-ops-events"),
    path("ops/events/resend/", views.ResendMatchingView.as_view(), name="api-ops-events-resend"),
    path("ops/events/<int:pk>/", views.EventDetailView.as_view(), name="api-ops-event"),
    path(
        "ops/events/<int:pk>/resend/",
        views.ResendEventView.as_view(),
        name="api-ops-event-resend",
    ),
    path("ops/accounts/", views.AccountHealthView.as_view(), name="api-ops-accounts"),
]

urlpatterns = [
    *documented_urlpatterns,
    path("schema/", views.SchemaView.as_view(), name="api-schema"),
]
