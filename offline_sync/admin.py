"""The Django admin of sync conflicts: staff review a conflict side by side and resolve it.

Conflict rows are read-only here: the change page of a conflict is its
resolution page, and every resolution goes through the same engine code as the
conflicts API (``offline_sync.resolution.resolve_conflict``), which imports no
view, so the admin loads neither the REST views nor drf-spectacular.
Resolving needs the ``offline_sync.resolve_conflict`` permission and, to apply
a change, the permission a push of it would need (``change`` or ``delete``).
"""

import django
from django.contrib import admin, messages
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import quote, unquote
from django.contrib.contenttypes.models import ContentType
from django.core import checks
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse

from . import conflicts
from .diff import diff_conflict, format_diff
from .exceptions import AlreadyResolved, ConflictChanged, SyncError
from .models import Conflict
from .records import RecordFormat
from .resolution import entity_for, resolve_conflict

RESOLVE_PERMISSION = "offline_sync.resolve_conflict"
PICK_PREFIX = "pick_"


class ConflictStatusListFilter(admin.SimpleListFilter):
    """Status, pending by default: the list opens on the conflicts that wait for someone."""

    title = "status"
    parameter_name = "status"
    ALL = "all"

    def lookups(self, request, model_admin):
        return [(Conflict.Status.PENDING, "Pending"), (Conflict.Status.RESOLVED, "Resolved"), (self.ALL, "All")]

    def value(self):
        return super().value() or Conflict.Status.PENDING

    def choices(self, changelist):
        # Drop the parent's "All" without a value: here no value means pending.
        yield from list(super().choices(changelist))[1:]

    def queryset(self, request, queryset):
        if self.value() in Conflict.Status.values:
            return queryset.filter(status=self.value())
        return queryset


@admin.register(Conflict)
class ConflictAdmin(admin.ModelAdmin):
    """Conflicts: a filtered list, a side-by-side page per conflict, and its resolution."""

    # Few, short columns, so the list fits a 1280 px screen beside the admin's sidebar.
    list_display = ("record", "entity", "kind", "pushed_by", "detected_on", "outcome")
    list_filter = (
        ConflictStatusListFilter,
        "entity",
        ("user", admin.RelatedOnlyFieldListFilter),
        ("detected_on", admin.DateFieldListFilter),
    )
    search_fields = ("=object_pk", "user__username", "device_id", "entity")
    search_help_text = "Record id (exact), user name, device id or entity."
    list_select_related = ("user", "content_type")
    # Pending before resolved when the list shows both.
    ordering = ("status", "-detected_on", "-pk")
    actions = ["keep_server_version"]
    change_form_template = "offline_sync/admin/conflict.html"

    @admin.display(description="record", ordering="object_pk")
    def record(self, conflict):
        return conflict.record_label

    @admin.display(description="pushed by", ordering="user")
    def pushed_by(self, conflict):
        return f"{conflict.user} ({conflict.device_id})" if conflict.device_id else str(conflict.user)

    @admin.display(description="status", ordering="status")
    def outcome(self, conflict):
        if conflict.status == Conflict.Status.PENDING:
            return conflict.get_status_display()
        return f"{conflict.get_status_display()}: {conflict.get_resolution_display()}"

    def get_changelist_instance(self, request):
        """The list, with each conflict's record loaded in one query per model (for its name)."""
        changelist = super().get_changelist_instance(request)
        changelist.result_list = list(changelist.result_list)
        attach_records(changelist.result_list, Conflict.objects.db)
        return changelist

    # Permissions: viewing needs the view (or resolve) permission; nobody adds,
    # edits or deletes conflict rows; resolving needs resolve_conflict.

    def has_resolve_permission(self, request, obj=None):
        return request.user.has_perm(RESOLVE_PERMISSION)

    def has_view_permission(self, request, obj=None):
        return (
            super().has_view_permission(request, obj)
            or request.user.has_perm("offline_sync.view_conflict")
            or self.has_resolve_permission(request, obj)
        )

    def has_module_permission(self, request):
        return super().has_module_permission(request) or self.has_view_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # Views

    def get_urls(self):
        resolve_view = self.admin_site.admin_view(self.resolve_view)
        name = f"{self.opts.app_label}_{self.opts.model_name}_resolve"
        return [path("<path:object_id>/resolve/", resolve_view, name=name), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The resolution page: both versions side by side and, while pending, the choices."""
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        conflict = self.get_object(request, unquote(object_id))
        if conflict is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, conflict):
            raise PermissionDenied
        context = {**self.get_resolution_context(request, conflict), **(extra_context or {})}
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.change_form_template, context)

    def get_resolution_context(self, request, conflict):
        entity = entity_for(conflict, request)
        fmt = RecordFormat(entity.model, entity.fields)
        pending = conflict.status == Conflict.Status.PENDING
        current = conflicts.current_record(conflict, fmt, Conflict.objects.db)
        snapshot = conflict.server
        if pending:
            # The client's change against the server now, beside the server at detection.
            diff = diff_for(conflict, entity, current)
            rows = format_diff(diff, [snapshot])
            before = None
        else:
            # Resolved: the client's change against the server just before resolution (at detection for
            # conflicts resolved before that was kept), beside the server at detection and the result.
            before = (conflict.server_before_resolution or {"record": snapshot})["record"]
            diff = diff_for(conflict, entity, before)
            rows = format_diff(diff, [snapshot, conflict.resolved_record])
        merge_possible = pending and not diff.server_deleted and not diff.client_deleted and bool(diff.differing)
        attach_records([conflict], Conflict.objects.db)
        return {
            **self.admin_site.each_context(request),
            "title": f"Conflict on {conflict.record_label}",
            "record_label": conflict.record_label,
            # Django 6 shows a change form's object tools (History) beside the title, outside the content.
            "object_tools_in_content": django.VERSION < (6,),
            "subtitle": None,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "original": conflict,
            "conflict": conflict,
            "entity": entity,
            "model_label": entity.model._meta.label,
            "add": False,
            "change": True,
            "is_popup": False,
            "save_as": False,
            "has_view_permission": self.has_view_permission(request, conflict),
            "has_resolve_permission": self.has_resolve_permission(request, conflict),
            "has_add_permission": False,
            "has_change_permission": False,
            "has_delete_permission": False,
            "has_editable_inline_admin_formsets": False,
            "media": self.media,
            "pending": pending,
            "diff": diff,
            "rows": rows,
            "merge_possible": merge_possible,
            "pick_prefix": PICK_PREFIX,
            "current": current,
            "server_version": current["version"] if current else None,
            "snapshot_version": snapshot["version"] if snapshot else None,
            "before_recorded": conflict.server_before_resolution is not None,
            "before_version": before["version"] if before else None,
            "base_version": conflict.client.get("base_version"),
            "changed_since_detection": pending and (current or {}).get("version") != (snapshot or {}).get("version"),
            "result_version": (conflict.resolved_record or {}).get("version"),
            "record_url": self.get_record_admin_url(entity.model, conflict.object_pk) if current else None,
            "resolve_url": self.get_admin_url(request, "resolve", conflict.pk),
        }

    def get_admin_url(self, request, view, *pks):
        """The URL of this admin's ``change``, ``resolve`` or ``changelist`` view, keeping the list's filters."""
        name = f"admin:{self.opts.app_label}_{self.opts.model_name}_{view}"
        url = reverse(name, args=[quote(pk) for pk in pks], current_app=self.admin_site.name)
        context = {"opts": self.opts, "preserved_filters": self.get_preserved_filters(request)}
        return add_preserved_filters(context, url)

    def get_record_admin_url(self, model, pk):
        """The admin change page of the conflicting record, when the site has one."""
        try:
            return reverse(
                f"admin:{model._meta.app_label}_{model._meta.model_name}_change",
                args=[quote(pk)],
                current_app=self.admin_site.name,
            )
        except NoReverseMatch:
            return None

    def resolve_view(self, request, object_id):
        """``POST``: apply one resolution (server, client or merge) if the record is as the page showed it."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        conflict = self.get_object(request, unquote(object_id))
        if conflict is None:
            raise Http404
        if not self.has_resolve_permission(request, conflict):
            raise PermissionDenied
        page = HttpResponseRedirect(self.get_admin_url(request, "change", conflict.pk))

        resolution = request.POST.get("resolution")
        if resolution not in Conflict.Resolution.values:
            self.message_user(request, "Unknown resolution: nothing was applied.", messages.ERROR)
            return page
        permission = conflicts.required_permission(conflict, resolution)
        if permission and not request.user.has_perm(permission):  # as the conflicts API requires
            self.message_user(request, f"Nothing was applied: you lack the {permission} permission.", messages.ERROR)
            return page
        try:
            expect_version = _parse_version(request.POST.get("version"))
        except ValueError:
            message = "The page did not say which server version it showed: reload it and choose again."
            self.message_user(request, message, messages.ERROR)
            return page
        if conflict.status == Conflict.Status.RESOLVED:
            self.message_user(request, f"This conflict was already resolved: {_how(conflict)}.", messages.WARNING)
            return page

        entity, record = entity_for(conflict, request), None
        if resolution == Conflict.Resolution.MERGE:
            current = conflicts.current_record(conflict, RecordFormat(entity.model, entity.fields), Conflict.objects.db)
            if (current or {}).get("version") != expect_version:
                self.message_changed(request, expect_version, current)
                return page
            record, error = self.get_merge_record(request, conflict, entity, current)
            if error:
                self.message_user(request, f"Nothing was applied: {error}", messages.ERROR)
                return page
        try:
            conflict = resolve_conflict(
                conflict, resolution, record, by=request.user, request=request, expect_version=expect_version
            )
        except ConflictChanged:
            fmt = RecordFormat(entity.model, entity.fields)
            self.message_changed(request, expect_version, conflicts.current_record(conflict, fmt, Conflict.objects.db))
            return page
        except AlreadyResolved as error:
            label = Conflict.Resolution(error.detail["resolution"]).label
            self.message_user(request, f"Someone resolved this conflict first: {label}.", messages.ERROR)
            return page
        except SyncError as error:
            self.message_user(request, f"Nothing was applied: {_describe(error.detail)}", messages.ERROR)
            return page
        label = Conflict.Resolution(resolution).label
        attach_records([conflict], Conflict.objects.db)
        self.log_change(request, conflict, f"Resolved: {label}.")
        self.message_user(request, f"Resolved the conflict on {conflict.record_label}: {label}.", messages.SUCCESS)
        return HttpResponseRedirect(self.get_admin_url(request, "changelist"))

    def get_merge_record(self, request, conflict, entity, current):
        """The merged record from the posted choices: ``(record, None)`` or ``(None, error)``."""
        diff = diff_for(conflict, entity, current)
        if diff.client_deleted or not diff.differing:
            return None, "there is nothing to merge: keep the server version or apply the client version."
        picks = {row.field: request.POST.get(PICK_PREFIX + row.field) for row in diff.differing}
        missing = [field for field, pick in picks.items() if pick not in ("server", "client")]
        if missing:
            return None, f"choose the server or the client value of {', '.join(missing)}."
        return {field: (current if pick == "server" else conflict.client)[field] for field, pick in picks.items()}, None

    def message_changed(self, request, expected, current):
        now = f"version {current['version']}" if current else "deleted"
        seen = "deleted" if expected is None else f"version {expected}"
        self.message_user(
            request,
            f"The server record changed since this page was drawn (you saw {seen}, it is now {now}). "
            "Nothing was applied: review both versions again and choose.",
            messages.ERROR,
        )

    @admin.action(description="Keep server version", permissions=["resolve"])
    def keep_server_version(self, request, queryset):
        """Resolve the selected pending conflicts by keeping the server's records; skip resolved ones."""
        resolved = skipped = 0
        selected = list(queryset.select_related("content_type"))
        attach_records(selected, Conflict.objects.db)  # the log entries name the records
        for conflict in selected:
            if conflict.status == Conflict.Status.RESOLVED:
                skipped += 1
                continue
            try:
                resolve_conflict(conflict, "server", None, by=request.user, request=request)
            except AlreadyResolved:
                skipped += 1
                continue
            self.log_change(request, conflict, f"Resolved: {Conflict.Resolution.SERVER.label}.")
            resolved += 1
        if resolved:
            self.message_user(request, f"Kept the server version of {_count(resolved)}.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"Skipped {_count(skipped)} already resolved.", messages.WARNING)


class EntityConflictAdmin(ConflictAdmin):
    """The conflicts of one synced model, as its own entry in the admin.

    Define a proxy of ``Conflict`` in your app's models (and make its migration)::

        from offline_sync.models import Conflict

        class ConflictingItem(Conflict):
            class Meta:
                proxy = True
                verbose_name = "conflicting item"
                verbose_name_plural = "conflicting items"

    then register it with this admin, naming the synced model::

        from offline_sync.admin import EntityConflictAdmin

        @admin.register(ConflictingItem)
        class ConflictingItemAdmin(EntityConflictAdmin):
            synced_model = Item

    The list and pages show only that model's conflicts. Resolving still needs
    ``offline_sync.resolve_conflict``; viewing needs the proxy's view permission
    or ``offline_sync.view_conflict``.
    """

    synced_model = None

    def get_queryset(self, request):
        content_type = ContentType.objects.get_for_model(self.synced_model)
        return super().get_queryset(request).filter(content_type=content_type)

    def check(self, **kwargs):
        errors = super().check(**kwargs)
        if not (isinstance(self.synced_model, type) and issubclass(self.synced_model, models.Model)):
            errors.append(
                checks.Error(
                    f"{type(self).__name__}.synced_model must be the synced model whose conflicts it shows.",
                    hint="Set synced_model = YourModel on the admin class.",
                    obj=type(self),
                    id="offline_sync.E101",
                )
            )
        return errors


def attach_records(conflicts, using):
    """Set each conflict's ``record_label``, how staff name its record (one query per model).

    Its ``__str__`` ("Acme"), or "company 7 (deleted)" once it is gone (or its
    id no longer fits the model's primary key). ``Conflict.__str__`` uses it.
    """
    wanted = {}
    for conflict in conflicts:
        model = conflict.content_type.model_class()
        name = model._meta.verbose_name if model is not None else conflict.entity
        conflict.record_label = f"{name} {conflict.object_pk} (deleted)"
        try:
            pk = model._meta.pk.to_python(conflict.object_pk)
        except (AttributeError, ValidationError):
            continue
        wanted.setdefault(model, {}).setdefault(pk, []).append(conflict)
    for model, by_pk in wanted.items():
        for pk, record in model._base_manager.using(using).in_bulk(list(by_pk)).items():
            for conflict in by_pk[pk]:
                conflict.record_label = str(record)


def diff_for(conflict, entity, server):
    """The client's change of ``conflict`` against ``server`` over the entity's fields it may change."""
    return diff_conflict(conflict, server, entity.fields, model=entity.model, read_only=entity.read_only_fields)


def _parse_version(value):
    """The posted server version: an integer, or empty when the page showed the record deleted."""
    if value is None:
        raise ValueError("no version posted")
    return None if value == "" else int(value)


def _how(conflict):
    by = f" by {conflict.resolved_by}" if conflict.resolved_by else ""
    return f"{conflict.get_resolution_display()}{by}"


def _count(n):
    return f"{n} conflict" if n == 1 else f"{n} conflicts"


def _describe(detail):
    """A validation error's detail as one line: ``price: A valid number is required.``"""
    if isinstance(detail, dict):
        # The API's top-level key ("client", "record", "detail") means nothing to staff.
        if len(detail) == 1 and next(iter(detail)) in ("client", "record", "detail"):
            return _describe(next(iter(detail.values())))
        return "; ".join(f"{key}: {_describe(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_describe(value) for value in detail)
    return str(detail)
