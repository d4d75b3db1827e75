"""Each synced model's options, and the one place that names the sync columns.

A model is synced once ``registry.finalize()`` has given it a ``SyncOptions``
(``model._sync_options``): every ``SyncModel`` subclass when Django prepares
its class, a model you don't own when ``register()`` is called. The engine
reads the column names and scope fields from there, as django-reversion's
``_VersionOptions``; nothing below this module knows any model.
"""

from dataclasses import dataclass

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.utils import timezone


@dataclass(frozen=True)
class SyncOptions:
    """How one model is synced, decided once when it is set up."""

    # The fields that decide who may see a record: tombstones keep their values.
    scope_fields: tuple = ()
    # Made synced by register() (a model you don't own) rather than by subclassing SyncModel.
    registered: bool = False
    # The sync columns (every migration of a synced model names them so: not configurable).
    version_field: str = "version"  # 1 on create, +1 per change
    modified_field: str = "modified_on"  # server time of the last change
    stamp_field: str = "sync_stamp"  # the commit-ordered position of the last change (stamps.py)

    @property
    def sync_fields(self) -> tuple:
        """The names of the three sync columns: version, modified time, stamp."""
        return (self.version_field, self.modified_field, self.stamp_field)

    def new_fields(self) -> dict:
        """Fresh model fields for the sync columns, by name: ``SyncModel`` has them, ``register()`` adds them."""
        return {
            self.version_field: models.PositiveIntegerField(default=1, editable=False),
            self.modified_field: models.DateTimeField(default=timezone.now, editable=False),
            self.stamp_field: models.BigIntegerField(default=0, editable=False, db_index=True),
        }

    def values(self, version, modified, stamp) -> dict:
        """``{column name: value}`` for a write that sets the three sync columns (values or expressions)."""
        return dict(zip(self.sync_fields, (version, modified, stamp)))

    def set_values(self, instance, version, modified, stamp) -> None:
        """Set the three sync attributes of ``instance``."""
        for name, value in zip(self.sync_fields, (version, modified, stamp)):
            setattr(instance, name, value)

    def scope_attnames(self, model: type) -> list:
        """The scope fields by attname (``owner_id``), as tombstones store them."""
        return [model._meta.get_field(name).attname for name in self.scope_fields]


def options_for(model: type) -> SyncOptions:
    """The ``SyncOptions`` of a synced model (or of a proxy or child that inherits them)."""
    try:
        return model._sync_options
    except AttributeError:
        raise ImproperlyConfigured(
            f"{model._meta.label} is not synced: subclass offline_sync.models.SyncModel, "
            "or call offline_sync.registry.register() for a model you don't own."
        ) from None


def add_sync_fields(model: type, options: SyncOptions) -> None:
    """Give ``model`` the sync columns it lacks (``SyncModel`` itself gets its own here)."""
    for name, field in options.new_fields().items():
        try:
            model._meta.get_field(name)
        except FieldDoesNotExist:
            field.contribute_to_class(model, name)
    model._meta._expire_cache()
