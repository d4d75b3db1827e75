"""Bulk writes for pushes, in a number of statements that does not grow with the rows.

``update_rows``: Django's ``bulk_update`` builds a CASE WHEN per row and field,
about half a millisecond of Python per row. Here the rows travel as data
instead: PostgreSQL joins ``unnest()`` of one array per column, SQLite runs one
``executemany``. Each field carries a flag per row, so a row leaves the fields
it did not send as they are (a partial ``modified`` record).

``insert_rows``: Django's ``bulk_create`` binds one parameter per value (and on
SQLite splits into batches of 999 of them). Here PostgreSQL gets one array per
column through ``unnest()``, and SQLite one ``executemany``.
"""

from django.db import models, transaction
from django.utils import timezone

from .stamps import next_stamp


def insert_rows(model, rows, *, connection):
    """Insert ``rows`` (``{attname: value}``; absent fields take their defaults); return the new pks in order.

    Rows of a synced model get version 1, the time and a fresh stamp. No
    model instance is built on the fast paths: that alone cost a tenth of a push.
    """
    if not rows:
        return []
    from .registry import is_registered

    if is_registered(model):
        meta = {"version": 1, "modified_on": timezone.now(), "sync_stamp": next_stamp(connection)}
        rows = [{**row, **meta} for row in rows]
    pk = model._meta.pk
    auto = _is_autoincrement(model)
    fields = [f for f in model._meta.concrete_fields if not (auto and f is pk)]
    plain = not any(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) for f in fields)
    if plain and connection.vendor == "postgresql" and all(_array_type(f, connection) for f in fields):
        columns = [_column(f, rows) for f in fields]
        pks = _insert_postgresql(model, fields, columns, connection, returning=auto)
        return pks if auto else columns[fields.index(pk)]
    if plain and connection.vendor == "sqlite" and auto:
        return _insert_sqlite(model, fields, [_column(f, rows) for f in fields], connection)
    objs = [model(**row) for row in rows]  # auto_now fields, array columns, other databases
    model._base_manager.db_manager(connection.alias).bulk_create(objs)
    return [obj.pk for obj in objs]


def _column(field, rows):
    name = field.attname
    return [row[name] if name in row else field.get_default() for row in rows]


def _array_type(field, connection):
    """The PostgreSQL array type of a field's column; None where unnest() cannot carry it."""
    db_type = field.db_type(connection)
    return None if not db_type or "[" in db_type else f"{db_type}[]"


# Exact field classes (not subclasses, which may override it) whose
# get_db_prep_save() returns a validated Python value unchanged on PostgreSQL:
# skipping the call saves about a third of a bulk insert's Python time.
# Not decimals nor floats: a default of 0 (an int) among sent Decimals would
# make one array of mixed types, which psycopg refuses.
_AS_IS_ON_POSTGRESQL = {
    models.AutoField,
    models.BigAutoField,
    models.BigIntegerField,
    models.BooleanField,
    models.CharField,
    models.DateTimeField,
    models.IntegerField,
    models.PositiveIntegerField,
    models.PositiveSmallIntegerField,
    models.SmallIntegerField,
    models.TextField,
}


def _prepared_for_postgresql(field, values, connection):
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if type(target) in _AS_IS_ON_POSTGRESQL and type(field) in (*_AS_IS_ON_POSTGRESQL, models.ForeignKey):
        return values
    return [field.get_db_prep_save(value, connection) for value in values]


def _insert_postgresql(model, fields, columns, connection, *, returning):
    # One array parameter per column instead of one parameter per value.
    qn = connection.ops.quote_name
    columns = [_prepared_for_postgresql(f, values, connection) for f, values in zip(fields, columns)]
    sql = "INSERT INTO {} ({}) SELECT * FROM unnest({})".format(
        qn(model._meta.db_table),
        ", ".join(qn(f.column) for f in fields),
        ", ".join(f"%s::{_array_type(f, connection)}" for f in fields),
    )
    if returning:
        sql += f" RETURNING {qn(model._meta.pk.column)}"  # in the order of the arrays
    with connection.cursor() as cursor:
        cursor.execute(sql, columns)
        return [row[0] for row in cursor.fetchall()] if returning else None


def _insert_sqlite(model, fields, columns, connection):
    prepared = [[f.get_db_prep_save(value, connection) for value in values] for f, values in zip(fields, columns)]
    rows = list(zip(*prepared))
    qn = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        qn(model._meta.db_table), ", ".join(qn(f.column) for f in fields), ", ".join(["%s"] * len(fields))
    )
    with transaction.atomic(using=connection.alias, savepoint=False), connection.cursor() as cursor:
        cursor.executemany(sql, rows)
        cursor.execute("SELECT last_insert_rowid()")
        last = cursor.fetchone()[0]
    # This transaction holds SQLite's write lock and AUTOINCREMENT ids only
    # grow, so the rows just inserted hold the ids up to the last one, in order.
    return list(range(last - len(rows) + 1, last + 1))


def _is_autoincrement(model):
    auto = model._meta.auto_field
    return auto is not None and auto is model._meta.pk


def update_rows(model, rows, *, stamp, connection):
    """Apply ``rows`` (``[(pk, {field name or attname: value})]``) and bump their sync metadata."""
    if not rows:
        return
    meta = model._meta
    now = meta.get_field("modified_on").get_db_prep_save(timezone.now(), connection)
    columns = []  # (field, values, flags or None when every row sets it)
    for name in sorted({name for _, values in rows for name in values}):  # field names or attnames
        field = meta.get_field(name)
        flags = [name in values for _, values in rows]
        prepped = [field.get_db_prep_save(values[name], connection) if name in values else None for _, values in rows]
        columns.append((field, prepped, None if all(flags) else flags))
    pks = [meta.pk.get_db_prep_save(pk, connection) for pk, _ in rows]
    if connection.vendor == "postgresql":
        _update_postgresql(model, columns, pks, now, stamp, connection)
    else:
        _update_sqlite(model, columns, pks, now, stamp, connection)


def _update_postgresql(model, columns, pks, now, stamp, connection):
    qn = connection.ops.quote_name
    meta = model._meta
    arrays, aliases, params, sets = [f"%s::{meta.pk.rel_db_type(connection)}[]"], ["pk"], [pks], []
    for n, (field, values, flags) in enumerate(columns):
        arrays.append(f"%s::{field.db_type(connection)}[]")
        aliases.append(f"v{n}")
        params.append(values)
        new = f"v.v{n}"
        if flags is not None:
            arrays.append("%s::boolean[]")
            aliases.append(f"f{n}")
            params.append(flags)
            new = f"CASE WHEN v.f{n} THEN v.v{n} ELSE t.{qn(field.column)} END"
        sets.append(f"{qn(field.column)} = {new}")
    sql = (
        f"UPDATE {qn(meta.db_table)} AS t SET {', '.join(sets + _meta_sets(qn, 't.'))} "
        f"FROM unnest({', '.join(arrays)}) AS v({', '.join(aliases)}) WHERE t.{qn(meta.pk.column)} = v.pk"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, stamp, *params])  # SET comes before FROM


def _update_sqlite(model, columns, pks, now, stamp, connection):
    qn = connection.ops.quote_name
    meta = model._meta
    sets = []
    for field, _, flags in columns:
        column = qn(field.column)
        sets.append(f"{column} = %s" if flags is None else f"{column} = CASE WHEN %s THEN %s ELSE {column} END")
    sql = f"UPDATE {qn(meta.db_table)} SET {', '.join(sets + _meta_sets(qn, ''))} WHERE {qn(meta.pk.column)} = %s"
    batch = []
    for i, pk in enumerate(pks):
        row = []
        for _, values, flags in columns:
            if flags is not None:
                row.append(flags[i])
            row.append(values[i])
        batch.append([*row, now, stamp, pk])
    with connection.cursor() as cursor:
        cursor.executemany(sql, batch)


def _meta_sets(qn, prefix):
    return [f"{qn('version')} = {prefix}{qn('version')} + 1", f"{qn('modified_on')} = %s", f"{qn('sync_stamp')} = %s"]
