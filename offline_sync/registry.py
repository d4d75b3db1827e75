"""Which models are synced, and the one path that sets a model up: ``finalize()``.

Two ways in, one setup path (as simple-history's ``finalize()``): a
``SyncModel`` subclass is finalized when Django prepares its class
(models.py), and a model you don't own when you call ``register(Model)``.

``register()`` gives a model of another app what ``SyncModel`` gives your
own: the ``version``, ``modified_on`` and ``sync_stamp`` columns (added to the
model, so that app needs a migration: keep it in your project with
``MIGRATION_MODULES``, as with django-modeltranslation), ``SyncQuerySet``
behind its managers, and tombstones on delete. Call it from your
``AppConfig.ready()``.
"""

import functools

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import router, transaction
from django.db.models.signals import post_delete, post_save, pre_save

from . import tombstones
from .options import SyncOptions, add_sync_fields, options_for
from .querysets import SyncQuerySet, current_version

# Registered models -> their base manager's name before register(), for unregister().
_base_manager_names = {}


class AlreadyRegistered(ImproperlyConfigured):
    pass


class NotRegistered(ImproperlyConfigured):
    pass


def is_registered(model: object) -> bool:
    """Whether ``model`` is synced: a ``SyncModel`` subclass, or registered with ``register()``."""
    return isinstance(model, type) and "_sync_options" in vars(model)


def get_registered_models() -> list:
    """Every installed synced model: ``SyncModel`` subclasses and registered models."""
    return [model for model in apps.get_models() if is_registered(model)]


def register(model: type | None = None, *, scope_fields: tuple = ()):
    """Make ``model`` (one you don't own) synced. Also usable as a class decorator."""
    if model is None:
        return lambda model: register(model, scope_fields=scope_fields)
    if is_registered(model):
        raise AlreadyRegistered(f"{model._meta.label} is already synced.")
    model.sync_scope_fields = tuple(scope_fields)
    finalize(model, SyncOptions(scope_fields=tuple(scope_fields), registered=True))
    return model


def unregister(model: type) -> None:
    """Stop syncing a registered model (its columns stay; writes no longer keep them)."""
    if not (is_registered(model) and options_for(model).registered):
        raise NotRegistered(f"{model._meta.label} was not registered with offline_sync.register().")
    uid = _uid(model)
    for signal in (pre_save, post_save, post_delete):
        signal.disconnect(sender=model, dispatch_uid=uid)
    model.save, model.delete = model.save.__wrapped__, model.delete.__wrapped__
    for manager in model._meta.local_managers:
        manager._queryset_class = getattr(manager._queryset_class, "_unsynced_class", manager._queryset_class)
    model._meta.base_manager_name = _base_manager_names.pop(model)
    model._meta._expire_cache()
    del model._sync_options


def finalize(model: type, options: SyncOptions) -> None:
    """Make ``model`` synced with ``options``: the setup of ``SyncModel`` subclasses and registered models alike.

    A registered model also gets what a ``SyncModel`` subclass has from its
    class: the sync columns, ``SyncQuerySet`` behind its managers, and saves
    and deletes that keep the metadata in one transaction.
    """
    model._sync_options = options
    if options.registered:
        add_sync_fields(model, options)
        _use_sync_querysets(model)
        _save_in_one_transaction(model)
        uid = _uid(model)
        pre_save.connect(_before_save, sender=model, dispatch_uid=uid)
        post_save.connect(_after_save, sender=model, dispatch_uid=uid)
    # Per model, not for every sender: a global receiver would stop Django
    # from fast-deleting the host project's other models.
    post_delete.connect(tombstones.record_deleted_instance, sender=model, dispatch_uid=_uid(model))


def _uid(model):
    return f"offline_sync_{model._meta.label}"


def _use_sync_querysets(model):
    for manager in model._meta.local_managers:
        if not issubclass(manager._queryset_class, SyncQuerySet):
            base = manager._queryset_class
            manager._queryset_class = type(f"Sync{base.__name__}", (SyncQuerySet, base), {"_unsynced_class": base})
    # Cascades write through the base manager: make it the (now synced) default one.
    _base_manager_names[model] = model._meta.base_manager_name
    model._meta.base_manager_name = model._meta.default_manager_name or model._meta.local_managers[0].name
    model._meta._expire_cache()


def _save_in_one_transaction(model):
    """Wrap ``model.save`` in a transaction: the save writes the values, ``_after_save`` their stamp.

    And ``model.delete``, so that its tombstone comes from the row (``tombstones.instance_deletion``).

    In autocommit (the admin, scripts) they would commit apart, and a pull in
    between would see the new values at the old stamp and version.
    """
    save = model.save

    @functools.wraps(save)
    def synced_save(self, *args, using=None, **kwargs):
        using = using or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            return save(self, *args, using=using, **kwargs)

    model.save = synced_save
    delete = model.delete

    @functools.wraps(delete)
    def synced_delete(self, using=None, keep_parents=False):
        using = using or router.db_for_write(type(self), instance=self)
        with tombstones.instance_deletion(self, using):
            return delete(self, using=using, keep_parents=keep_parents)

    model.delete = synced_delete


def _before_save(sender, instance, raw=False, using=None, update_fields=None, **kwargs):
    if raw:
        return
    # The save writes the version as it is (the row is locked); the bump
    # happens in one SQL update after the save.
    options = options_for(sender)
    updating, version = current_version(instance, using)
    setattr(instance, options.version_field, version)
    scope = set(options.scope_fields)
    if scope and updating and (update_fields is None or scope & set(update_fields)):
        rows = sender._base_manager.using(using).filter(pk=instance.pk)
        instance._sync_scope_before = tombstones.scope_values(rows, lock=True)


def _after_save(sender, instance, raw=False, using=None, **kwargs):
    if raw:
        return
    options = options_for(sender)
    sender._base_manager.using(using).filter(pk=instance.pk).update()
    instance.refresh_from_db(using=using, fields=list(options.sync_fields))
    before = instance.__dict__.pop("_sync_scope_before", None)
    if before:
        after = {instance.pk: tuple(getattr(instance, a) for a in options.scope_attnames(sender))}
        tombstones.record_scope_exits(sender, before, after, getattr(instance, options.stamp_field), using)
