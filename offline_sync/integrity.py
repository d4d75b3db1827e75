"""Pushed values checked against the database in bulk: foreign-key targets and unique values.

A push and a conflict resolution run these before they write, so a dangling
reference is a 404 naming the child and the parent, and a unique clash a 400
naming the record and the field, never an ``IntegrityError`` at commit. One
query per foreign key and per unique field set, whatever the number of records.
"""

from collections import defaultdict
from typing import NamedTuple

from django.db.models import Q

from .exceptions import RecordsInvalid, RecordsNotFound
from .local_ids import LocalRef


class Row(NamedTuple):
    """A record about to be written."""

    ref: dict  # how errors name it: {"local_id": ...} or {"id": ...}
    path: tuple  # its place in the request: ("changes", "items", "added", "0")
    values: dict  # by attname
    pk: object = None  # the row it overwrites (a modified record); None for a new one


def check(model, rows, *, visible, using, name):
    """Raise ``RecordsNotFound`` or ``RecordsInvalid`` for ``rows`` of ``model``.

    ``visible`` maps related models to the queryset of their records the caller
    may see (a reference to any other is refused, as if it did not exist);
    ``name`` names the entity in a 404.
    """
    dangling = dangling_references(model, rows, visible, using)
    if dangling:
        raise RecordsNotFound({name: dangling})
    clashes = unique_clashes(model, rows, using)
    if clashes:
        raise RecordsInvalid(clashes)


def dangling_references(model, rows, visible, using):
    """``[{**ref, field: target}]`` for each foreign key whose target is missing or not the caller's to see."""
    dangling = []
    for fk in foreign_keys(model):
        rows_with = [row for row in rows if _is_server_id(row.values.get(fk.attname))]
        wanted = {row.values[fk.attname] for row in rows_with}
        if not wanted:
            continue
        target = fk.target_field  # the primary key, or the to_field
        targets = visible.get(fk.related_model, fk.related_model._base_manager.all()).using(using)
        found = set(targets.filter(**{f"{target.attname}__in": wanted}).values_list(target.attname, flat=True))
        dangling += [
            {**row.ref, fk.name: row.values[fk.attname]} for row in rows_with if row.values[fk.attname] not in found
        ]
    return dangling


def _is_server_id(value):
    """A foreign key value to look up: not NULL, and not a record this push adds (a ``LocalRef``)."""
    return value is not None and not isinstance(value, LocalRef)


def foreign_keys(model):
    """The foreign keys a pushed record may set (not a multi-table child's link to its parent)."""
    return [f for f in model._meta.concrete_fields if f.is_relation and not f.auto_created]


def unique_sets(model):
    """The field sets whose values must be unique together, by attname: unique fields and total constraints."""
    meta = model._meta
    sets = [(f.attname,) for f in meta.concrete_fields if f.unique and not f.primary_key]
    names = [*meta.unique_together, *(c.fields for c in meta.total_unique_constraints)]
    sets += [tuple(meta.get_field(name).attname for name in fields) for fields in names]
    return list(dict.fromkeys(sets))


def unique_clashes(model, rows, using, vacated=()):
    """Error detail for rows whose unique values repeat within ``rows`` or clash with another row.

    ``vacated``: pks of rows deleted before ``rows`` are written, whose values are free then.
    """
    sets = unique_sets(model)
    current = _current_values(model, rows, sets, using)
    errors = {}
    for attnames in sets:
        keyed = _keys(model, rows, attnames, current)
        if not keyed:
            continue
        by_key = defaultdict(list)
        for row, key in keyed:
            by_key[key].append(row)
        rewritten = [row.pk for row, _ in keyed if row.pk is not None]
        stored = [key for key in by_key if not any(isinstance(value, LocalRef) for value in key)]
        taken = _taken(model, attnames, stored, [*rewritten, *vacated], using)
        for key, same in by_key.items():
            for n, row in enumerate(same):
                if key in taken:
                    _add_error(errors, row, model, attnames, "already exists")
                elif n:
                    _add_error(errors, row, model, attnames, "appears twice in this push")
    return errors


def _current_values(model, rows, sets, using):
    """The stored values of modified rows for the unique sets they touch only in part."""
    needed = {a for attnames in sets if len(attnames) > 1 for a in attnames}
    pks = [row.pk for row in rows if row.pk is not None and needed & row.values.keys()]
    if not pks:
        return {}
    columns = sorted(needed)
    return {
        pk: dict(zip(columns, rest))
        for pk, *rest in model._base_manager.using(using).filter(pk__in=pks).values_list("pk", *columns)
    }


def _keys(model, rows, attnames, current):
    """``[(row, values of attnames)]`` for the rows that write this set; NULLs never clash."""
    fields = {f.attname: f for f in model._meta.concrete_fields}
    keyed = []
    for row in rows:
        if row.pk is not None and not any(attname in row.values for attname in attnames):
            continue  # a modified record that keeps these values as they are
        key = []
        for attname in attnames:
            if attname in row.values:
                key.append(row.values[attname])
            elif row.pk is not None:
                key.append(current.get(row.pk, {}).get(attname))
            elif fields[attname].has_default():
                key.append(fields[attname].get_default())
            else:
                key.append(None)  # the database's default (db_default): not known here
        if None not in key:
            keyed.append((row, tuple(key)))
    return keyed


def _taken(model, attnames, keys, rewritten, using):
    """The ``keys`` that rows other than those being rewritten (or deleted) already hold."""
    if len(attnames) == 1:
        match = Q(**{f"{attnames[0]}__in": [key[0] for key in keys]})
    else:
        match = Q(pk__in=[])
        for key in keys:
            match |= Q(**dict(zip(attnames, key)))
    rows = model._base_manager.using(using).filter(match).exclude(pk__in=rewritten)
    return set(rows.values_list(*attnames))


def _add_error(errors, row, model, attnames, what):
    fields = [model._meta.get_field(attname) for attname in attnames]
    labels = " and ".join(str(f.verbose_name) for f in fields)
    message = f"{str(model._meta.verbose_name).capitalize()} with this {labels} {what}."
    node = errors
    for key in row.path:
        node = node.setdefault(key, {})
    node.setdefault(fields[0].name, []).append(message)
