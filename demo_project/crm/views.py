from offline_sync.rest_framework.entities import SyncEntity
from offline_sync.rest_framework.views import LastWriteWinsSyncView

from .models import Company


class CompanyLastWriteWinsView(LastWriteWinsSyncView):
    """`/api/sync/companies-lww/`: companies pulled and pushed, last write wins."""

    entities = [SyncEntity("companies", Company)]
