"""Bulk writes for pushes, in a number of statements that does not grow with the rows.

``update_rows``: Django's ``bulk_update`` builds a CASE WHEN per row and field,
about half a millisecond of Python per row. Here the rows travel as data
instead: PostgreSQL joins ``unnest()`` of one array per column, SQLite runs one
``executemany``. Each field carries a flag per row, so a row leaves the fields
it did not send as they are (a partial ``modified`` record).

``insert_rows``: Django's ``bulk_create`` binds one parameter per value (and on
SQLite splits into batches of 999 of them). Here PostgreSQL gets one array per
column through ``unnest()``, and SQLite one ``executemany``.

Pure SQL over a model and rows: whether the rows are synced, and under which
column names, is the caller's to say (``options``, the model's ``SyncOptions``).
"""

from typing import NamedTuple

from django.db import NotSupportedError, models, transaction
from django.db.models.lookups import In
from django.utils import timezone

from .options import SyncOptions
from .stamps import next_stamp


class InArray(models.Func):
    """``field IN values`` as a filter; on PostgreSQL ``= ANY()`` of one array parameter.

    Django binds one parameter per value, and psycopg then parses the query
    for each placeholder: a tenth of a 10,000-record push's time.
    """

    output_field = models.BooleanField()
    conditional = True

    def __init__(self, field: models.Field, values) -> None:
        super().__init__(models.F(field.name))
        self.target, self.values = field, list(values)

    def as_sql(self, compiler, connection):
        return compiler.compile(In(self.source_expressions[0], self.values))

    def as_postgresql(self, compiler, connection):
        column, params = compiler.compile(self.source_expressions[0])
        values = [self.target.get_db_prep_value(value, connection) for value in self.values]
        return f"{column} = ANY(%s::{self.target.rel_db_type(connection)}[])", [*params, values]


def insert_rows(model: type, rows: list, *, connection, options: SyncOptions | None = None) -> list:
    """Insert ``rows`` (``{attname: value}``; absent fields take their defaults); return the new pks in order.

    With ``options`` (a synced model's), the rows get version 1, the time and
    a fresh stamp, taken in the caller's transaction. No model instance is
    built on the fast paths: that alone cost a tenth of a push. A multi-table
    child gets one INSERT per table, parents first. A field with a database
    default that a row leaves out gets that default: such rows go in a
    statement of their own, without the column.
    """
    if not rows:
        return []
    model = model._meta.concrete_model  # a proxy writes its concrete model's table
    now = timezone.now()
    if options is not None:
        meta = options.values(1, now, next_stamp(connection))
        rows = [{**row, **meta} for row in rows]
    auto_now = [f.attname for f in model._meta.concrete_fields if _auto_now(f, adding=True)]
    if auto_now:
        rows = [{**row, **{name: now for name in auto_now}} for row in rows]
    db_defaults = [f.attname for f in model._meta.concrete_fields if f.has_db_default()]
    groups = {}  # the db_default columns rows leave out -> the rows' indexes
    for i, row in enumerate(rows):
        groups.setdefault(frozenset(name for name in db_defaults if name not in row), []).append(i)
    pks = [None] * len(rows)
    for left_out, indexes in groups.items():
        for i, pk in zip(indexes, _insert_tables(model, [rows[i] for i in indexes], left_out, connection)):
            pks[i] = pk
    return pks


def _insert_tables(model, rows, left_out, connection):
    pks = None
    for table in [*reversed(model._meta.get_parent_list()), model]:  # the root first
        if pks is not None:  # a child table: its primary key links to the parent row
            rows = [{**row, table._meta.pk.attname: pk} for row, pk in zip(rows, pks)]
        fields = [f for f in table._meta.local_concrete_fields if f.attname not in left_out]
        pks = _insert_table(table, fields, rows, connection)
    return pks


def _insert_table(model, fields, rows, connection):
    pk = model._meta.pk
    auto = _is_autoincrement(model)
    fields = [f for f in fields if not (auto and f is pk)]
    if connection.vendor == "postgresql" and all(_array_type(f, connection) for f in fields):
        columns = [_column(f, rows) for f in fields]
        pks = _insert_postgresql(model, fields, columns, connection, returning=auto)
        return pks if auto else columns[fields.index(pk)]
    if connection.vendor == "sqlite":
        columns = [_column(f, rows) for f in fields]
        pks = _insert_sqlite(model, fields, columns, connection, returning=auto)
        return pks if auto else columns[fields.index(pk)]
    if model._meta.parents:
        raise NotSupportedError(f"{model._meta.label}: a multi-table child with array columns cannot be pushed.")
    objs = [model(**row) for row in rows]  # array columns (PostgreSQL), which unnest() cannot carry
    model._base_manager.db_manager(connection.alias).bulk_create(objs)
    return [obj.pk for obj in objs]


def _auto_now(field, *, adding):
    return getattr(field, "auto_now", False) or (adding and getattr(field, "auto_now_add", False))


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


def _insert_sqlite(model, fields, columns, connection, *, returning):
    prepared = [[f.get_db_prep_save(value, connection) for value in values] for f, values in zip(fields, columns)]
    rows = list(zip(*prepared))
    qn = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        qn(model._meta.db_table), ", ".join(qn(f.column) for f in fields), ", ".join(["%s"] * len(fields))
    )
    with transaction.atomic(using=connection.alias, savepoint=False), connection.cursor() as cursor:
        cursor.executemany(sql, rows)
        if not returning:
            return None
        cursor.execute("SELECT last_insert_rowid()")
        last = cursor.fetchone()[0]
    # This transaction holds SQLite's write lock and AUTOINCREMENT ids only
    # grow, so the rows just inserted hold the ids up to the last one, in order.
    return list(range(last - len(rows) + 1, last + 1))


def _is_autoincrement(model):
    auto = model._meta.auto_field
    return auto is not None and auto is model._meta.pk


def update_rows(model: type, rows: list, *, stamp: int, connection, options: SyncOptions) -> None:
    """Apply ``rows`` (``[(pk, {field name or attname: value})]``) and bump their sync metadata.

    One UPDATE per table the rows write (a multi-table child has several);
    the sync columns (named by ``options``) are set in the table that holds them.
    """
    if not rows:
        return
    meta = model._meta
    now = timezone.now()
    auto_now = [f.attname for f in meta.concrete_fields if _auto_now(f, adding=False)]
    if auto_now:
        rows = [(pk, {**values, **{name: now for name in auto_now}}) for pk, values in rows]
    version_field, modified_field, stamp_field = (meta.get_field(name) for name in options.sync_fields)
    sync_table = stamp_field.model._meta.concrete_model
    by_table = {sync_table: []}  # table -> [(field, values, flags or None)]
    for name in sorted({name for _, values in rows for name in values}):  # field names or attnames
        field = meta.get_field(name)
        flags = [name in values for _, values in rows]
        prepped = [field.get_db_prep_save(values[name], connection) if name in values else None for _, values in rows]
        by_table.setdefault(field.model._meta.concrete_model, []).append(
            (field, prepped, None if all(flags) else flags)
        )
    pks = [meta.pk.get_db_prep_save(pk, connection) for pk, _ in rows]
    params = (modified_field.get_db_prep_save(now, connection), stamp)
    bump = _Bump(version_field.column, modified_field.column, stamp_field.column, params)
    update = _update_postgresql if connection.vendor == "postgresql" else _update_sqlite
    for table, columns in by_table.items():
        update(table, columns, pks, bump if table is sync_table else None, connection)


class _Bump(NamedTuple):
    """The sync columns' part of an UPDATE: the version + 1, the modified time and the stamp as parameters."""

    version: str  # column names
    modified: str
    stamp: str
    params: tuple  # (modified time, stamp), prepared for the database

    def sets(self, qn, prefix):
        version = qn(self.version)
        return [f"{version} = {prefix}{version} + 1", f"{qn(self.modified)} = %s", f"{qn(self.stamp)} = %s"]


def _update_postgresql(model, columns, pks, bump, connection):
    qn = connection.ops.quote_name
    meta = model._meta
    pk = meta.pk
    while pk.is_relation:  # a multi-table child's link to its parent: the root's key type
        pk = pk.target_field
    arrays, aliases, params, sets = [f"%s::{pk.rel_db_type(connection)}[]"], ["pk"], [pks], []
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
    if bump:
        sets += bump.sets(qn, "t.")
    sql = (
        f"UPDATE {qn(meta.db_table)} AS t SET {', '.join(sets)} "
        f"FROM unnest({', '.join(arrays)}) AS v({', '.join(aliases)}) WHERE t.{qn(meta.pk.column)} = v.pk"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*(bump.params if bump else ()), *params])  # SET comes before FROM


def _update_sqlite(model, columns, pks, bump, connection):
    qn = connection.ops.quote_name
    meta = model._meta
    sets = []
    for field, _, flags in columns:
        column = qn(field.column)
        sets.append(f"{column} = %s" if flags is None else f"{column} = CASE WHEN %s THEN %s ELSE {column} END")
    if bump:
        sets += bump.sets(qn, "")
    sql = f"UPDATE {qn(meta.db_table)} SET {', '.join(sets)} WHERE {qn(meta.pk.column)} = %s"
    batch = []
    for i, pk in enumerate(pks):
        row = []
        for _, values, flags in columns:
            if flags is not None:
                row.append(flags[i])
            row.append(values[i])
        batch.append([*row, *(bump.params if bump else ()), pk])
    with connection.cursor() as cursor:
        cursor.executemany(sql, batch)
