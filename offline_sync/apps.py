from django.apps import AppConfig


class OfflineSyncConfig(AppConfig):
    name = "offline_sync"
    verbose_name = "Offline sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
        from .models import SyncModel
        from .registry import connect_tombstones

        # Registered models connect themselves in register().
        for model in self.apps.get_models():
            if issubclass(model, SyncModel):
                connect_tombstones(model)
