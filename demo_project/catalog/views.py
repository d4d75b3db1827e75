from offline_sync.rest_framework.entities import SyncEntity
from offline_sync.rest_framework.views import ReadOnlySyncView

from .filters import ProductFilter
from .models import Product


class ProductPullView(ReadOnlySyncView):
    """`GET /api/sync/products/`: read-only sync (full and delta) of the catalog."""

    entities = [SyncEntity("products", Product, filterset_class=ProductFilter)]
    throttle_scope = "sync"  # settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
