"""The app's configuration: the system checks, registered once the models are loaded."""

from django.apps import AppConfig


class OfflineSyncConfig(AppConfig):
    name = "offline_sync"
    verbose_name = "Offline sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Here, not at the top: checks.py imports the models, which Django
        # loads only after every app's apps.py (SyncModel subclasses are set
        # up as their classes are prepared, registered models in register()).
        from . import checks  # noqa: F401  (registers the system checks)
