"""An app the project does not own: its model knows nothing of offline_sync.

tests/testapp/apps.py registers it, as a host project would.
"""

from django.conf import settings
from django.db import models


class Label(models.Model):
    name = models.CharField(max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)

    objects = models.Manager()

    def __str__(self):
        return self.name
