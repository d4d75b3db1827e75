from offline_sync.rest_framework.entities import SyncEntity
from offline_sync.rest_framework.views import ConflictDetectionSyncView, LastWriteWinsSyncView

from .models import Company, Contact


class CompanyLastWriteWinsView(LastWriteWinsSyncView):
    """`/api/sync/companies-lww/`: companies pulled and pushed, last write wins."""

    entities = [SyncEntity("companies", Company)]
    throttle_scope = "sync"


class CompanyConflictDetectionView(ConflictDetectionSyncView):
    """`/api/sync/companies/`: companies pulled and pushed; stale edits become conflicts."""

    entities = [SyncEntity("companies", Company)]
    throttle_scope = "sync"


class CompanyContactsView(LastWriteWinsSyncView):
    """`/api/sync/company-contacts/`: one-to-many. Shared companies and each user's own contacts.

    A contact pushed with `"company": {"local_id": ...}` joins a company added in the same push.
    """

    entities = [
        SyncEntity("companies", Company),
        SyncEntity("contacts", Contact, scope=lambda request: {"owner": request.user}),
    ]
    throttle_scope = "sync"


class CompanyContactsConflictDetectionView(ConflictDetectionSyncView):
    """`/api/sync/crm/`: one-to-many as `/api/sync/company-contacts/`, with conflict detection (the offline web app's).

    An edit made on a stale version (staff changed the company in the admin meanwhile, say) becomes a conflict.
    """

    entities = CompanyContactsView.entities
    throttle_scope = "sync"
