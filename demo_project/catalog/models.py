from django.db import models

from offline_sync.models import SyncModel


class Product(SyncModel):
    """A product of the catalog: staff edit it in the admin, devices pull it read-only."""

    name = models.CharField(max_length=200)
    category = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=10, decimal_places=2)

    def __str__(self):
        return self.name
