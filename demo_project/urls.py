"""URLs of the demo project: the sync endpoints of docs/protocol.md section 8, token login, the schema, the admin."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.throttling import ScopedRateThrottle

from offline_sync.rest_framework.errors import not_found_view
from offline_sync.rest_framework.parsers import SyncJSONParser

from .catalog.views import ProductPullView
from .crm.views import (
    CompanyConflictDetectionView,
    CompanyContactsConflictDetectionView,
    CompanyContactsView,
    CompanyLastWriteWinsView,
)


class TokenView(ObtainAuthToken):
    """DRF's token login, throttled per client address (password guessing), with the sync JSON parser."""

    parser_classes = [SyncJSONParser, FormParser, MultiPartParser]  # deep JSON is a 400, not a RecursionError
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"


urlpatterns = [
    path("admin/", admin.site.urls),
    path("app/", include("demo_project.offline_app.urls")),
    path("api/auth/token/", TokenView.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/sync/products/", ProductPullView.as_view(), name="sync-products"),
    path("api/sync/companies-lww/", CompanyLastWriteWinsView.as_view(), name="sync-companies-lww"),
    path("api/sync/companies/", CompanyConflictDetectionView.as_view(), name="sync-companies"),
    path("api/sync/company-contacts/", CompanyContactsView.as_view(), name="sync-company-contacts"),
    path("api/sync/crm/", CompanyContactsConflictDetectionView.as_view(), name="sync-crm"),
    path("api/sync/conflicts/", include("offline_sync.rest_framework.urls")),
    # Last: any other URL under api/sync/ answers the protocol's JSON 404.
    re_path(r"^api/sync/", not_found_view),
]
