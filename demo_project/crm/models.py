from django.conf import settings
from django.db import models

from offline_sync.models import Conflict, SyncModel


class Company(SyncModel):
    """Shared by every user with the model permissions (docs/protocol.md section 8)."""

    name = models.CharField(max_length=200)
    address = models.CharField(max_length=300, blank=True)
    phone = models.CharField(max_length=50, blank=True)

    class Meta(SyncModel.Meta):
        verbose_name_plural = "companies"

    def __str__(self):
        return self.name


class Contact(SyncModel):
    """A company's contact, private to its owner (docs/protocol.md section 8): the server sets ``owner``."""

    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="contacts")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contacts")

    sync_scope_fields = ("owner",)

    def __str__(self):
        return self.name


class ConflictingCompany(Conflict):
    """Conflicts on companies, as their own admin entry ("Conflicting companies")."""

    class Meta:
        proxy = True
        verbose_name = "conflicting company"
        verbose_name_plural = "conflicting companies"
