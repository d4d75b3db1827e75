"""OpenAPI 3 schemas of the sync endpoints, through drf-spectacular (the optional ``[openapi]`` extra).

``SyncAPIView.schema`` is a ``SyncSchema``: on first use it makes a
``SyncAutoSchema`` (hooks.py), which documents each endpoint from its
``entities`` (protocol sections 2, 3, 4 and 7):

- per entity (named after ``SyncEntity.name``; ``items`` gives ``Items...``):
  ``ItemsRecord`` (the wire record, typed from the model), ``ItemsChanges``
  (``records`` and ``deleted``) and, for endpoints that accept pushes,
  ``ItemsPushChanges``, ``ItemsAdded``, ``ItemsModified``, ``ItemsDeletion``;
  pushed fields are typed from the entity's serializer (``get_serializer_class()``,
  what ``serializers.validate_record()`` runs), so their constraints are the
  server's; the fields a push may carry but the server ignores are listed too, and
  any other key is refused (``additionalProperties: false``), as the server does;
- per view (named after the view class without ``View``; ``ProductSyncView``
  gives ``ProductSync...``): ``ProductSyncPage`` (the pull response) and
  ``ProductSyncChanges``; with a ``post`` method also ``ProductSyncPush`` (the
  request), ``ProductSyncPushChanges``, ``ProductSyncIdMap`` and
  ``ProductSyncPushResult``;
- shared: ``Error`` (the envelope), ``Conflict``; for the conflicts API
  ``PendingConflicts``, ``Resolution`` (``KeepResolution`` or ``MergeResolution``)
  and ``ResolvedConflict``.

If two endpoints carry entities with the same name but different models or
fields, the later one's components get the view's name in front
(``ItemsAndNotesPullItemsRecord``), so no component is reused wrongly.

GET takes ``since``, ``limit`` and one query parameter per filter of every
entity's FilterSet; POST takes the filters (they choose the subset of the
response). Operation ids end in ``_pull`` and ``_push``.

Nothing is imported from drf-spectacular until a schema is asked for, so the
views and the admin run without it.
"""

__all__ = ["SyncAutoSchema", "SyncSchema"]


def __getattr__(name):
    # `from offline_sync.rest_framework.schema import SyncAutoSchema` imports drf-spectacular then, not before.
    if name == "SyncAutoSchema":
        from .hooks import SyncAutoSchema

        return SyncAutoSchema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SyncSchema:
    """The ``schema`` of sync views: a ``SyncAutoSchema``, made on first access; DRF's default without drf-spectacular.

    A descriptor in front of one inspector for all views, as a class attribute
    ``schema = SyncAutoSchema()`` would be, that imports nothing until used.
    """

    def __init__(self):
        self.inspector = None

    def __get__(self, instance, owner):
        return self.get_inspector().__get__(instance, owner)

    def __set__(self, instance, value):
        self.get_inspector().__set__(instance, value)

    def get_inspector(self):
        if self.inspector is None:
            try:
                import drf_spectacular  # noqa: F401 (the [openapi] extra)
            except ImportError:
                from rest_framework.schemas import DefaultSchema

                self.inspector = DefaultSchema()  # DEFAULT_SCHEMA_CLASS, as on any APIView
            else:
                from .hooks import SyncAutoSchema

                self.inspector = SyncAutoSchema()
        return self.inspector
