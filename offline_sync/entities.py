"""``Entity``: one entity of an endpoint, resolved for one caller. Plain Django, no HTTP."""

from dataclasses import dataclass, field

from django.db.models import QuerySet

from .records import RecordFormat, default_fields


@dataclass
class Entity:
    """One entity of an endpoint as one caller sees it.

    - ``name``: its key in ``changes`` (``"companies"``).
    - ``subset``: the records the device keeps (scope and filters).
    - ``visible``: the records the caller may see (scope only); default ``subset``.
    - ``tombstone_scope``: the scope values, by attname, a tombstone must carry to reach the caller.
    - ``fields``: wire fields; default every concrete field.
    - ``detect_conflicts``: conflict detection (protocol 4.2) for this entity instead of last
      write wins; None: the endpoint's choice.
    - ``index``: its place in the endpoint (parents first); ``Endpoint`` sets it.
    """

    name: str
    subset: QuerySet
    visible: QuerySet = None
    tombstone_scope: dict = field(default_factory=dict)
    fields: list = None
    detect_conflicts: bool = None
    index: int = 0

    def __post_init__(self):
        self.model = self.subset.model
        if self.visible is None:
            self.visible = self.subset
        self.format = RecordFormat(self.model, self.fields or default_fields(self.model))
        # Every row in the caller's scope, rows the default manager hides
        # included: each change of one is sent, as a record while it is in the
        # subset and as a deletion once it is not (filtered out, soft-deleted).
        self.scoped = self.model._base_manager.filter(**self.tombstone_scope)
        self.subset_is_scoped = self.subset.query.where == self.scoped.query.where

    # A position's source (cursors.py): entity i's records are 2i, its tombstones 2i + 1, so that
    # changes with one stamp come in the endpoint's order, parents first.
    @property
    def records_rank(self) -> int:
        return 2 * self.index

    @property
    def tombstones_rank(self) -> int:
        return 2 * self.index + 1
