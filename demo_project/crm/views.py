from offline_sync.rest_framework.entities import SyncEntity
from offline_sync.rest_framework.views import ConflictDetectionSyncView, LastWriteWinsSyncView

from .models import Company


class CompanyLastWriteWinsView(LastWriteWinsSyncView):
    """`/api/sync/companies-lww/`: companies pulled and pushed, last write wins."""

    entities = [SyncEntity("companies", Company)]
    throttle_scope = "sync"


class CompanyConflictDetectionView(ConflictDetectionSyncView):
    """`/api/sync/companies/`: companies pulled and pushed; stale edits become conflicts."""

    entities = [SyncEntity("companies", Company)]
    throttle_scope = "sync"
