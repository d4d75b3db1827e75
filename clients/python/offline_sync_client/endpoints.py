"""What a device syncs: endpoints (one sync URL each, with its pattern) and their entities."""

import re
from dataclasses import dataclass, field

READ_ONLY = "read_only"
LAST_WRITE_WINS = "last_write_wins"
CONFLICT_DETECTION = "conflict_detection"
PATTERNS = (READ_ONLY, LAST_WRITE_WINS, CONFLICT_DETECTION)

# Keys of a wire record that the server owns; everything else is the record's data.
SERVER_KEYS = ("id", "version", "modified_on")

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Entity:
    """One entity of an endpoint (``companies``): a local table of that name.

    ``foreign_keys`` maps a field to the entity it points at (``{"company":
    "companies"}``): a child of a record not yet on the server holds
    ``{"local_id": ...}`` there, rewritten to the server id when the parent
    is pushed (PROTOCOL.md sections 2 and 4.3).
    """

    name: str
    foreign_keys: dict = field(default_factory=dict)

    def __post_init__(self):
        if not _NAME.match(self.name) or self.name.startswith("sync_"):
            raise ValueError(
                f"Entity name {self.name!r}: use letters, digits, _ and - (at most 63), not starting with 'sync_'."
            )
        object.__setattr__(self, "foreign_keys", dict(self.foreign_keys))


@dataclass(frozen=True)
class Endpoint:
    """A sync URL: ``name`` (how the store and sync units refer to it), ``path``, ``pattern``, its entities.

    ``params`` are the endpoint's filters (``{"category": "Drinks"}``): the
    subset this device keeps. Changing them makes the next sync a full pull.
    Entities are listed parents first: pushes and apply go in that order.
    """

    name: str
    path: str
    pattern: str
    entities: tuple
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.pattern not in PATTERNS:
            raise ValueError(f"Endpoint {self.name!r}: pattern must be one of {', '.join(PATTERNS)}.")
        if not self.path.startswith("/"):
            raise ValueError(f"Endpoint {self.name!r}: path must start with '/' (it is joined to the base URL).")
        entities = tuple(Entity(e) if isinstance(e, str) else e for e in self.entities)
        if not entities:
            raise ValueError(f"Endpoint {self.name!r} needs at least one entity.")
        names = [e.name for e in entities]
        if len(set(names)) != len(names):
            raise ValueError(f"Endpoint {self.name!r} lists an entity twice.")
        for entity in entities:
            for fk, target in entity.foreign_keys.items():
                if target not in names:
                    raise ValueError(
                        f"{entity.name}.{fk} points at {target!r}, which endpoint {self.name!r} does not carry."
                    )
        object.__setattr__(self, "entities", entities)
        object.__setattr__(self, "params", {k: str(v) for k, v in self.params.items()})

    @property
    def writable(self):
        return self.pattern != READ_ONLY

    def entity(self, name):
        for entity in self.entities:
            if entity.name == name:
                return entity
        raise KeyError(name)
