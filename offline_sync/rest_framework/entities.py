"""``SyncEntity``: how one model is offered on a sync endpoint."""

from django.core.exceptions import ImproperlyConfigured

from ..records import default_fields


class SyncEntity:
    """One entity of an endpoint.

    - ``name``: its key in ``changes`` (``"products"``).
    - ``model``: a ``SyncModel`` subclass or a registered model.
    - ``fields``: wire fields; default: ``id``, ``version``, ``modified_on`` and
      every concrete field of the model.
    - ``filterset_class``: a django-filter ``FilterSet`` over the model; the
      request's query parameters choose the subset a device keeps.
    - ``scope``: ``callable(request) -> dict`` of ``{scope field: value}`` that
      limits the records a user may see (``lambda r: {"owner": r.user}``). Each
      field must be in the model's ``sync_scope_fields``, so that tombstones
      carry it and a deletion reaches only the devices that may see it. Scope
      fields are read-only to clients; the server sets them on added records.
    - ``read_only_fields``: more fields clients may send but never change.
    - ``serializer_class``: validates pushed records; default: a
      ``SyncRecordSerializer`` over the writable fields.
    - ``detect_conflicts``: True for conflict detection on this entity, False for last
      write wins; default (None) the view's pattern.

    An entity's foreign key to an entity listed before it on the same endpoint (or to
    itself) takes ``{"local_id": ...}`` of a record added in the same push (protocol 4.3).
    """

    def __init__(
        self,
        name,
        model,
        *,
        fields=None,
        filterset_class=None,
        scope=None,
        read_only_fields=(),
        serializer_class=None,
        detect_conflicts=None,
    ):
        from ..registry import is_registered

        if not is_registered(model):
            raise ImproperlyConfigured(
                f"SyncEntity {name!r}: {model!r} is not synced: subclass offline_sync.models.SyncModel, "
                "or call offline_sync.registry.register() for a model you don't own."
            )
        self.name = name
        self.model = model
        self.fields = list(fields) if fields else default_fields(model)
        self.filterset_class = filterset_class
        self.scope = scope
        self.read_only_fields = [*read_only_fields, *(model.sync_scope_fields if scope else ())]
        self.serializer_class = serializer_class
        self.detect_conflicts = detect_conflicts

    def __repr__(self):
        return f"SyncEntity({self.name!r}, {self.model.__name__})"

    def get_scope(self, request):
        """Scope values for this request, by field attname (``{"owner_id": 3}``)."""
        if self.scope is None:
            return {}
        scope = {}
        for name, value in self.scope(request).items():
            if name not in self.model.sync_scope_fields:
                raise ImproperlyConfigured(
                    f"SyncEntity {self.name!r} scopes by {name!r}: add it to {self.model.__name__}.sync_scope_fields."
                )
            field = self.model._meta.get_field(name)
            scope[field.attname] = getattr(value, "pk", value)
        return scope

    def get_serializer_class(self):
        if self.serializer_class is None:
            from .serializers import record_serializer_for

            self.serializer_class = record_serializer_for(self)
        return self.serializer_class

    def get_server_values(self, request):
        """Field values the server sets on records this request adds: the caller's scope."""
        return self.get_scope(request)
