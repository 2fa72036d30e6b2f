"""Plain-SQL INSERTs of model instances, for the write path (a unit of work, the group commit).

``Model.objects.create`` compiles its SQL anew for every row: about 0.3 ms of Python per row,
several times what SQLite needs to store it.  An invoice write inserts a handful of rows, in the
single writer thread that every request waits for, so here a statement is built once per model,
vendor and row count, and each value is adapted exactly as the ORM adapts it
(``field.get_db_prep_save(field.pre_save(obj, add=True), connection)``).  The instances come
back saved: primary key set, ``_state.adding`` false.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)

CHUNK = 500  # rows per statement: far below SQLite's and PostgreSQL's limits on parameters


@functools.cache
def _columns(model: type[Model]) -> tuple[Field[Any, Any], ...]:
    """The fields an INSERT writes: every concrete field but an auto-incremented primary key."""
    meta = model._meta
    return tuple(
        field for field in meta.concrete_fields if not (field.primary_key and meta.auto_field is field)
    )


@functools.cache
def _statement(model: type[Model], vendor: str, rows: int, returning: bool) -> str:
    del vendor  # part of the cache key: quoting and RETURNING differ by vendor
    quote = connection.ops.quote_name
    fields = _columns(model)
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = "INSERT INTO {} ({}) VALUES {}".format(  # noqa: S608  names come from the model, values are parameters
        quote(model._meta.db_table),
        ", ".join(quote(str(field.column)) for field in fields),
        ", ".join([one] * rows),
    )
    if returning:
        sql += f" RETURNING {quote(str(model._meta.pk.column))}"
    return sql


# Fields whose values, when of these exact types, the ORM hands to both drivers unchanged (the
# generic adaptation costs more than the row's SQL on a wide table); None too, if nullable.
_PLAIN: dict[type[Field[Any, Any]], tuple[type, ...]] = {
    models.CharField: (str,),
    models.TextField: (str,),
    models.IntegerField: (int,),
    models.BooleanField: (bool,),
    models.ForeignKey: (int,),  # the attname's value: the target's integer key
}


def _plain(field: Field[Any, Any]) -> tuple[type, ...] | None:
    """The value types of ``field`` that need no adaptation; None: always adapt."""
    if type(field).pre_save is not Field.pre_save:  # e.g. auto_now: the value is computed
        return None
    for base, types in _PLAIN.items():
        if isinstance(field, base) and type(field).get_prep_value is base.get_prep_value:
            if isinstance(field, models.ForeignKey) and not isinstance(field.target_field, models.AutoField):
                return None
            return types
    return None


@functools.cache
def _plain_types(model: type[Model]) -> tuple[tuple[type, ...] | None, ...]:
    return tuple(_plain(field) for field in _columns(model))


def _values(obj: Model, fields: tuple[Field[Any, Any], ...], wrapper: Any) -> list[Any]:
    values = []
    for field, plain in zip(fields, _plain_types(type(obj)), strict=True):
        if plain is not None:
            value = getattr(obj, field.attname)
            if type(value) in plain or (value is None and field.null):
                values.append(value)
                continue
        values.append(field.get_db_prep_save(field.pre_save(obj, True), wrapper))
    return values


def insert(objs: Sequence[Model], *, returning: bool = True) -> None:
    """INSERT ``objs`` (all of one model) in as few statements as possible, in the current transaction.

    With ``returning`` each instance gets its new primary key.  RETURNING may list the rows in
    any order, but one statement numbers its VALUES rows in order (SQLite: a new rowid is the
    largest plus one; PostgreSQL: the sequence is drawn row by row), so the sorted keys match
    the rows.
    """
    if not objs:
        return
    model = type(objs[0])
    fields = _columns(model)
    returning = returning and model._meta.auto_field is not None
    wrapper = connections[DEFAULT_DB_ALIAS]  # not the proxy: it costs a lookup per attribute
    with wrapper.cursor() as cursor:
        for start in range(0, len(objs), CHUNK):
            chunk = objs[start : start + CHUNK]
            params: list[Any] = []
            for obj in chunk:
                params += _values(obj, fields, wrapper)
            cursor.execute(_statement(model, wrapper.vendor, len(chunk), returning), params)
            if returning:
                for obj, pk in zip(chunk, sorted(row[0] for row in cursor.fetchall()), strict=True):
                    obj.pk = pk
    for obj in objs:
        obj._state.adding = False
        obj._state.db = wrapper.alias


def insert_values(model: type[Model], columns: tuple[str, ...], values: Sequence[Sequence[Any]]) -> None:
    """INSERT rows given as tuples of ready database values (bytes, numbers, text) of ``columns``.

    For many small rows (Merkle nodes) where building a model instance per row costs more than
    the row: nothing is adapted, so only values both drivers take as they are belong here.
    """
    if not values:
        return
    quote = connection.ops.quote_name
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(values), CHUNK):
            chunk = values[start : start + CHUNK]
            cursor.execute(
                "INSERT INTO {} ({}) VALUES {}".format(  # noqa: S608  names come from the caller's model
                    quote(model._meta.db_table),
                    ", ".join(quote(c) for c in columns),
                    ", ".join([one] * len(chunk)),
                ),
                [value for row in chunk for value in row],
            )


# --- reads ----------------------------------------------------------------------------------------


@functools.cache
def _select_statement(
    model: type[Model], vendor: str, where: tuple[str, ...], order_by: tuple[str, ...], limit: int | None
) -> str:
    del vendor  # part of the cache key: quoting differs by vendor
    quote = connection.ops.quote_name
    meta = model._meta
    columns = {field.name: str(field.column) for field in meta.concrete_fields}
    columns |= {field.attname: str(field.column) for field in meta.concrete_fields}
    sql = "SELECT {} FROM {} WHERE {}".format(  # noqa: S608  names come from the model, values are parameters
        ", ".join(quote(str(field.column)) for field in meta.concrete_fields),
        quote(meta.db_table),
        " AND ".join(f"{quote(columns[name])} = %s" for name in where),
    )
    if order_by:
        sql += " ORDER BY " + ", ".join(quote(columns[name]) for name in order_by)
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql


def select(
    model: type[M],
    where: dict[str, Any],
    *,
    order_by: tuple[str, ...] = (),
    limit: int | None = None,
) -> list[M]:
    """The ``model`` instances whose fields equal ``where`` (field names → database-ready values:
    numbers and text), every column loaded.

    For a hot read (the API's invoice fetch): ``Model.objects.filter(...)`` builds and compiles
    its SQL on every call, several times the cost of running it; here the statement is written
    once per model, vendor and shape, and the rows come back through ``raw()``, which converts
    each column as the ORM does.  The caller scopes ``where`` (the merchant) as a selector would.
    """
    names = tuple(where)
    sql = _select_statement(model, connection.vendor, names, order_by, limit)
    return list(model._default_manager.raw(sql, [where[name] for name in names]))
