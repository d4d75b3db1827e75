from django.db import models

from offline_sync.models import Conflict, SyncModel


class Company(SyncModel):
    """Shared by every user with the model permissions (PROTOCOL.md section 8)."""

    name = models.CharField(max_length=200)
    address = models.CharField(max_length=300, blank=True)
    phone = models.CharField(max_length=50, blank=True)

    class Meta(SyncModel.Meta):
        verbose_name_plural = "companies"

    def __str__(self):
        return self.name


class ConflictingCompany(Conflict):
    """Conflicts on companies, as their own admin entry ("Conflicting companies")."""

    class Meta:
        proxy = True
        verbose_name = "conflicting company"
        verbose_name_plural = "conflicting companies"
