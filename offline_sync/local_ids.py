"""One-to-many (protocol 4.3): foreign keys to records added in the same push, ``{"local_id": ...}``.

An endpoint's entities come parents first. A foreign key of one entity to the
model of an entity at or before it (itself included: a parent company) may name
a record the same push adds, by its local id. The engine checks every such
reference before anything is looked up, inserts the parents first (a
self-referencing entity in layers, one bulk insert each), and writes the
children with the new ids. A local id is never mistaken for a server id: it is
a ``LocalRef``, never an int or a string.
"""

from typing import NamedTuple

from django.core.exceptions import ImproperlyConfigured

from .exceptions import RecordsInvalid


class LocalRef(NamedTuple):
    """A foreign key value naming a record added in the same push."""

    local_id: str


def references(entities) -> dict:
    """``{entity name: {fk attname: (field name, target entity name)}}`` for the entities' foreign keys.

    ``entities`` (anything with ``name``, ``model`` and ``fields``) in the
    endpoint's order. Raises ``ImproperlyConfigured`` when an entity refers to
    one that comes after it: a cycle between entities, or children listed
    before their parents, which the push order (parents first) cannot apply.
    """
    first_of = {}
    for index, entity in enumerate(entities):
        first_of.setdefault(entity.model._meta.concrete_model, (index, entity.name))
    graph = {}
    for index, entity in enumerate(entities):
        graph[entity.name] = {}
        for field in entity.model._meta.concrete_fields:
            if not takes_local_ids(field) or field.name not in (entity.fields or [field.name]):
                continue
            target = first_of.get(field.related_model._meta.concrete_model)
            if target is None:
                continue
            if target[0] > index:
                raise ImproperlyConfigured(
                    f"Entity {entity.name!r} refers to {target[1]!r} ({field.name}), which comes after it: "
                    "list parents before their children, and no cycle between entities."
                )
            graph[entity.name][field.attname] = (field.name, target[1])
    return graph


def takes_local_ids(field) -> bool:
    """A foreign key to its target's primary key: a ``to_field`` key holds another value, not an id."""
    return (field.many_to_one or field.one_to_one) and field.target_field.primary_key


def check(pushes, graph) -> None:
    """Every ``LocalRef`` names a record added to its target entity in this push; 400 at its path if not."""
    added = {push.name: {item.local_id for item in push.added} for push in pushes}
    errors = {}
    for push in pushes:
        refs = graph.get(push.name, {})
        for kind in ("added", "modified"):
            for item in getattr(push, kind):
                for attname, value in item.values.items():
                    if not isinstance(value, LocalRef):
                        continue
                    name, target = refs.get(attname, (_field_name(push.model, attname), None))
                    if target is None:
                        message = "A local_id can only stand for the id of a record of an entity of this endpoint."
                    elif value.local_id not in added.get(target, ()):
                        message = f"No record with local_id {value.local_id!r} is added to {target!r} in this push."
                    else:
                        continue
                    errors.setdefault(push.name, {}).setdefault(kind, {}).setdefault(str(item.index), {})[name] = [
                        message
                    ]
    if errors:
        raise RecordsInvalid({"changes": errors})
    for push in pushes:
        layers(push, graph)  # refuses records that name each other in a cycle


def layers(push, graph) -> list:
    """``push.added`` in insertion batches: each record after the records of its own entity it names.

    One batch unless the entity refers to itself; then one per level of the deepest chain of
    records naming each other in this push (linear in the records). Raises ``RecordsInvalid``
    for records that name each other in a cycle.
    """
    own = [attname for attname, (_, target) in graph.get(push.name, {}).items() if target == push.name]
    if not own:
        return [push.added] if push.added else []
    by_local_id = {item.local_id: item for item in push.added}
    waiting_for = {}  # local id -> how many records of this push it waits for
    children = {}  # local id -> the records that name it
    for item in push.added:
        named = {ref.local_id for a in own if isinstance(ref := item.values.get(a), LocalRef)} & by_local_id.keys()
        waiting_for[item.local_id] = len(named)
        for local_id in named:
            children.setdefault(local_id, []).append(item)
    batch = [item for item in push.added if not waiting_for[item.local_id]]
    batches, placed = [], 0
    while batch:
        batches.append(batch)
        placed += len(batch)
        following = []
        for item in batch:
            for child in children.get(item.local_id, ()):
                waiting_for[child.local_id] -= 1
                if not waiting_for[child.local_id]:
                    following.append(child)
        batch = following
    if placed < len(push.added):
        cycle = sorted((local_id for local_id, n in waiting_for.items() if n), key=str)
        raise RecordsInvalid(
            {"changes": {push.name: {"added": [f"These records name each other in a cycle: {', '.join(cycle)}."]}}}
        )
    return batches


def rewrite(values: dict, attnames: dict, id_map: dict) -> dict:
    """``values`` with each ``LocalRef`` replaced by the server id ``id_map[target][local_id]``."""
    out = dict(values)
    for attname, (_, target) in attnames.items():
        ref = out.get(attname)
        if isinstance(ref, LocalRef):
            out[attname] = id_map[target][ref.local_id]
    return out


def rewrite_sent(item: dict, attnames: dict, id_map: dict) -> dict:
    """A record as sent (wire names), its ``{"local_id": ...}`` foreign keys replaced by the new ids.

    A change set aside as a conflict keeps the record as sent; once the push has
    created the parents it names, resolving it in the client's favour needs their ids.
    """
    out = dict(item)
    for name, target in attnames.values():
        ref = out.get(name)
        if isinstance(ref, dict) and ref.get("local_id") in id_map.get(target, {}):
            out[name] = id_map[target][ref["local_id"]]
    return out


def depended_on(names, graph) -> set:
    """The entities that records of ``names`` refer to, directly or through others (a parent's parent)."""
    found, todo = set(), list(names)
    while todo:
        for _, target in graph.get(todo.pop(), {}).values():
            if target not in found:
                found.add(target)
                todo.append(target)
    return found


def has_refs(values: dict) -> bool:
    return any(isinstance(value, LocalRef) for value in values.values())


def _field_name(model, attname):
    for field in model._meta.concrete_fields:
        if field.attname == attname:
            return field.name
    return attname
