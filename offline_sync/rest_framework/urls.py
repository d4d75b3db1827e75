"""URLs of the conflicts API: ``path("api/sync/conflicts/", include("offline_sync.rest_framework.urls"))``."""

from django.urls import path

from .conflicts import ConflictListView, ConflictResolveView

app_name = "offline_sync"

urlpatterns = [
    path("", ConflictListView.as_view(), name="conflicts"),
    path("<int:conflict_id>/resolve/", ConflictResolveView.as_view(), name="conflict-resolve"),
]
