"""Offline data sync for mobile clients over Django REST framework.

Import the public API from its modules: ``offline_sync.models.SyncModel``,
``offline_sync.rest_framework.views.ReadOnlySyncView`` and friends (see
``docs/architecture.md``). Importing this package itself loads no Django code.
"""

__version__ = "0.1.0"
