from django.conf import settings
from django.db import models

from offline_sync.models import Conflict, SyncManager, SyncModel


class Item(SyncModel):
    name = models.CharField(max_length=200)
    category = models.CharField(max_length=100, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2, default=0)

    def __str__(self):
        return self.name


class Note(SyncModel):
    """A private record: each user sees only their own."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    item = models.ForeignKey(Item, null=True, blank=True, on_delete=models.SET_NULL)
    text = models.TextField(blank=True)

    sync_scope_fields = ("owner",)


class ConflictingItem(Conflict):
    """The conflicts of items, as their own admin entry (offline_sync.admin.EntityConflictAdmin)."""

    class Meta:
        proxy = True
        verbose_name = "conflicting item"
        verbose_name_plural = "conflicting items"


class Tag(SyncModel):
    """A model with a unique field, for upserts (``bulk_create(update_conflicts=True)``)."""

    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=100, blank=True)


class ActiveManager(SyncManager):
    def get_queryset(self):
        return super().get_queryset().filter(active=True)


class Document(SyncModel):
    """Soft delete: the default manager hides inactive rows; the base manager sees every row."""

    title = models.CharField(max_length=100)
    active = models.BooleanField(default=True)

    objects = ActiveManager()
    all_objects = SyncManager()

    class Meta(SyncModel.Meta):
        base_manager_name = "all_objects"


class Folder(SyncModel):
    """Shared, and its own parent: local ids inside one entity (protocol 4.3)."""

    name = models.CharField(max_length=100)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE)


class Task(SyncModel):
    """A private child of a shared parent."""

    folder = models.ForeignKey(Folder, on_delete=models.CASCADE)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    title = models.CharField(max_length=100)

    sync_scope_fields = ("owner",)


class Step(SyncModel):
    """A grandchild: three levels in one push."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = models.CharField(max_length=100)

    sync_scope_fields = ("owner",)
