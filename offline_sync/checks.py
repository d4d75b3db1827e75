"""System checks (ids ``offline_sync.E00x``): misconfigurations that would lose changes."""

from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.urls import get_resolver

from .local_ids import references
from .options import options_for
from .querysets import SyncQuerySet
from .registry import get_registered_models
from .stamps import SUPPORTED_VENDORS


@register(Tags.models)
def check_synced_models(app_configs=None, **kwargs) -> list:
    errors = []
    for model in get_registered_models():
        if app_configs is None or model._meta.app_config in app_configs:
            errors += check_model(model)
    return errors


def check_model(model: type) -> list:
    """The configuration errors of one synced model."""
    errors = []
    label = model._meta.label
    for role, manager in (("default", model._default_manager), ("base", model._base_manager)):
        if not issubclass(manager._queryset_class, SyncQuerySet):
            errors.append(
                Error(
                    f"{label}'s {role} manager does not use SyncQuerySet, so its bulk writes are not synced.",
                    hint="Build custom managers with SyncManager or SyncQuerySet.as_manager(), and if you "
                    "declare Meta, inherit it (class Meta(SyncModel.Meta)) to keep base_manager_name.",
                    obj=model,
                    id="offline_sync.E001",
                )
            )
    if model._base_manager.get_queryset().query.has_filters():
        errors.append(
            Error(
                f"{label}'s base manager ({model._meta.base_manager_name or 'objects'}) filters rows, so the rows "
                "it hides are never reported to devices as changed or deleted.",
                hint="Keep the filtering manager as the default one and add an unfiltered SyncManager as the "
                "base manager: all_objects = SyncManager(), and in class Meta(SyncModel.Meta): "
                'base_manager_name = "all_objects".',
                obj=model,
                id="offline_sync.E004",
            )
        )
    for name in options_for(model).scope_fields:
        try:
            model._meta.get_field(name)
        except Exception:
            errors.append(
                Error(
                    f"{label}.sync_scope_fields names {name!r}, which is not a field.",
                    obj=model,
                    id="offline_sync.E002",
                )
            )
    return errors


@register(Tags.database)
def check_database_vendor(databases=None, **kwargs) -> list:
    errors = []
    for model in get_registered_models():
        alias = router.db_for_write(model)
        if databases is not None and alias not in databases:
            continue
        vendor = connections[alias].vendor
        if vendor not in SUPPORTED_VENDORS:
            errors.append(
                Error(
                    f"{model._meta.label} is written to database {alias!r} ({vendor}); offline_sync needs "
                    "PostgreSQL or SQLite to order changes by commit.",
                    obj=model,
                    id="offline_sync.E003",
                )
            )
    return errors


@register(Tags.urls)
def check_endpoint_entities(app_configs=None, **kwargs):
    """E005: a sync view's entities must come parents first, with no cycle (protocol 4.3)."""
    errors = []
    for view_class in _view_classes(get_resolver().url_patterns):
        entities = getattr(view_class, "entities", None)
        if not entities or not isinstance(entities, (list, tuple)):
            continue
        try:
            references(entities)
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), obj=view_class, id="offline_sync.E005"))
    return errors


def _view_classes(patterns, seen=None):
    """The class-based views of a URLconf, each once."""
    seen = set() if seen is None else seen
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            yield from _view_classes(pattern.url_patterns, seen)
            continue
        view_class = getattr(pattern.callback, "view_class", None)
        if view_class is not None and view_class not in seen:
            seen.add(view_class)
            yield view_class
