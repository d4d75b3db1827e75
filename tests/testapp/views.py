from offline_sync.rest_framework.entities import SyncEntity
from offline_sync.rest_framework.views import ConflictDetectionSyncView, LastWriteWinsSyncView, ReadOnlySyncView

from .filters import ItemFilter
from .models import Item, Note


class ItemPullView(ReadOnlySyncView):
    entities = [SyncEntity("items", Item, filterset_class=ItemFilter)]


class NotePullView(ReadOnlySyncView):
    entities = [SyncEntity("notes", Note, scope=lambda request: {"owner": request.user})]


class ItemsAndNotesPullView(ReadOnlySyncView):
    entities = [
        SyncEntity("items", Item, filterset_class=ItemFilter),
        SyncEntity("notes", Note, scope=lambda request: {"owner": request.user}),
    ]


class ItemPushView(LastWriteWinsSyncView):
    entities = [SyncEntity("items", Item, filterset_class=ItemFilter)]


class NotePushView(LastWriteWinsSyncView):
    entities = [SyncEntity("notes", Note, scope=lambda request: {"owner": request.user})]


class ItemConflictView(ConflictDetectionSyncView):
    entities = [SyncEntity("items", Item, filterset_class=ItemFilter)]
