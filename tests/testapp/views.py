from offline_sync.rest_framework.entities import SyncEntity
from offline_sync.rest_framework.views import ConflictDetectionSyncView, LastWriteWinsSyncView, ReadOnlySyncView
from tests.thirdparty.models import Label

from .filters import ItemFilter
from .models import Document, Folder, Item, Note, Step, Task


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


class LabelPushView(LastWriteWinsSyncView):
    """A model of an app the project does not own (tests/thirdparty), registered."""

    entities = [SyncEntity("labels", Label, scope=lambda request: {"owner": request.user})]


class StaffNotePullView(ReadOnlySyncView):
    """Every user's notes, unscoped (a staff view)."""

    entities = [SyncEntity("notes", Note)]


class DocumentPushView(LastWriteWinsSyncView):
    """Soft-deleted documents are hidden by the default manager."""

    entities = [SyncEntity("documents", Document)]


class NoteConflictView(ConflictDetectionSyncView):
    entities = [SyncEntity("notes", Note, scope=lambda request: {"owner": request.user})]


class NarrowedItemPullView(ReadOnlySyncView):
    """Items, but ``get_visible_queryset`` hides archived ones."""

    entities = [SyncEntity("items", Item)]

    def get_visible_queryset(self, entity):
        return super().get_visible_queryset(entity).exclude(category="archived")


def owned(request):
    return {"owner": request.user}


class FolderTasksView(LastWriteWinsSyncView):
    """One-to-many: shared folders (their own parents), private tasks and their private steps."""

    entities = [
        SyncEntity("folders", Folder),
        SyncEntity("tasks", Task, scope=owned),
        SyncEntity("steps", Step, scope=owned),
    ]


class FolderTasksConflictView(FolderTasksView):
    """The same, with conflict detection on the tasks only."""

    entities = [
        SyncEntity("folders", Folder),
        SyncEntity("tasks", Task, scope=owned, detect_conflicts=True),
        SyncEntity("steps", Step, scope=owned),
    ]


class ItemsNotesPushView(LastWriteWinsSyncView):
    """Items and private notes whose item is SET_NULL when it goes."""

    entities = [SyncEntity("items", Item), SyncEntity("notes", Note, scope=owned)]
