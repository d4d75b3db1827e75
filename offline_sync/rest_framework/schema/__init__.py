"""OpenAPI 3 schemas of the sync endpoints, through drf-spectacular.

``SyncAPIView`` sets ``schema = SyncAutoSchema()``, which documents each
endpoint from its ``entities`` (protocol sections 2, 3, 4 and 7):

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
"""

from .hooks import SyncAutoSchema

__all__ = ["SyncAutoSchema"]
