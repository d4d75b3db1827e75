"""The ``OFFLINE_SYNC`` settings dict, read lazily so ``override_settings`` works."""

from datetime import timedelta

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS = {
    # Items (records plus deleted ids) in a pull page when the client sends no
    # `limit`, and the most a client may ask for.
    "PAGE_SIZE": 1000,
    "MAX_PAGE_SIZE": 10000,
    # How long deletion tombstones are kept. A client whose cursor is older than
    # the purge horizon must do a full pull (410 cursor_expired).
    # Also how long a push's answer is kept for retries with the same sync_id.
    "TOMBSTONE_RETENTION": timedelta(days=30),
    # Push limits, answered 413 payload_too_large: records (all entities
    # together) and bytes of the JSON body. Generous, so that a device's
    # offline backlog fits in one push.
    "MAX_PUSH_RECORDS": 10000,
    "MAX_PUSH_BYTES": 10 * 1024 * 1024,
}


class SyncSettings:
    """Attribute access to ``settings.OFFLINE_SYNC`` merged over ``DEFAULTS``."""

    def __init__(self):
        self._cache = None

    def __getattr__(self, name):
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown OFFLINE_SYNC setting {name!r}; known: {', '.join(DEFAULTS)}")
        if self._cache is None:
            self._cache = {**DEFAULTS, **getattr(django_settings, "OFFLINE_SYNC", {})}
        return self._cache[name]

    def reload(self):
        self._cache = None


sync_settings = SyncSettings()


@receiver(setting_changed)
def reload_sync_settings(*, setting, **kwargs):
    if setting == "OFFLINE_SYNC":
        sync_settings.reload()
