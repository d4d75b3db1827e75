from django.apps import AppConfig, apps
from django.db.models.signals import post_delete


def synced_models():
    """Every installed concrete ``SyncModel`` subclass."""
    from .models import SyncModel

    return [model for model in apps.get_models() if issubclass(model, SyncModel)]


class OfflineSyncConfig(AppConfig):
    name = "offline_sync"
    verbose_name = "Offline sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
        from .tombstones import record_deleted_instance

        # Per model, not for every sender: a global receiver would stop Django
        # from fast-deleting the host project's own, unsynced models.
        for model in synced_models():
            post_delete.connect(
                record_deleted_instance, sender=model, dispatch_uid=f"offline_sync_tomb_{model._meta.label}"
            )
