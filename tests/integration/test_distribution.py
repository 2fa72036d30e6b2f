"""The schema against the Citus declaration (fapiao.platform.distribution, docs/operations/scaling.md).

* Every table, framework and many-to-many tables included, is declared distributed, reference or
  local, and nothing is declared that does not exist.
* A distributed table has its distribution column, NOT NULL, and every unique key other than the
  surrogate primary key includes it; no reference or local table points at a distributed one and
  no distributed table at a local one — except the gaps declared in ``KNOWN_GAPS``, which must be
  exactly the gaps there are (so the list can only shrink).
* Ledger logic needs no cross-shard transaction: issuing and red-lettering an invoice change rows
  of the acting merchant only (in every distributed table, by its distribution column), and no
  reference table but those declared in ``LEDGER_REFERENCE_WRITES`` (the outgoing-number registry);
  and every foreign key between distributed tables joins rows of one merchant.

Not checked here (Citus is not installable on these machines): the primary keys, which are
surrogate ``id`` columns today and would become ``(merchant_id, id)`` (the docs say how).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, models

from fapiao.accounts.models import User
from fapiao.invoices.services import issue_invoice, red_letter_invoice
from fapiao.platform.distribution import KNOWN_GAPS, LEDGER_REFERENCE_WRITES, TABLES, Target
from tests.conftest import VALID_INVOICE


def all_models() -> list[type[models.Model]]:
    return list(apps.get_models(include_auto_created=True))


def test_every_table_is_declared() -> None:
    labels = {model._meta.label for model in all_models()}
    assert labels - TABLES.keys() == set(), "declare these tables in fapiao/platform/distribution.py"
    assert TABLES.keys() - labels == set(), "these declared tables do not exist"


def _target(model: type[models.Model]) -> Target:
    return TABLES[model._meta.label]


def _unique_sets(model: type[models.Model]) -> dict[str, set[str]]:
    """Every unique key but the primary key: name -> its columns."""
    meta = model._meta
    found: dict[str, set[str]] = {}
    for constraint in meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and constraint.fields:
            found[constraint.name] = {meta.get_field(name).column for name in constraint.fields}
    for names in meta.unique_together:
        found["+".join(names)] = {meta.get_field(name).column for name in names}
    for field in meta.concrete_fields:
        if field.unique and not field.primary_key:
            found[field.name] = {field.column}
    return found


def schema_gaps() -> set[tuple[str, str]]:
    """What keeps today's schema from Citus' rules, as (label, what)."""
    gaps: set[tuple[str, str]] = set()
    for model in all_models():
        label, target = model._meta.label, _target(model)
        columns = {field.column: field for field in model._meta.concrete_fields}
        if target.kind == "distributed":
            column = columns.get(target.column)
            if column is None:
                gaps.add((label, f"no column {target.column}"))
                continue
            if column.null:
                gaps.add((label, f"{target.column} nullable"))
            for name, unique in _unique_sets(model).items():
                if target.column not in unique:
                    gaps.add((label, f"unique:{name}"))
        for field in model._meta.concrete_fields:
            if not field.is_relation or field.related_model is None:
                continue
            pointed = _target(field.related_model)  # type: ignore[arg-type]
            if target.kind != "distributed" and pointed.kind == "distributed":
                gaps.add((label, f"fk:{field.name}"))
            if target.kind == "distributed" and pointed.kind == "local":
                gaps.add((label, f"fk:{field.name}"))
    return gaps


def test_schema_follows_the_declaration() -> None:
    gaps = schema_gaps()
    assert gaps - KNOWN_GAPS.keys() == set(), "the schema breaks Citus' rules for the declared targets"
    assert KNOWN_GAPS.keys() - gaps == set(), "fixed: remove these from KNOWN_GAPS (and the docs)"


# --- no cross-shard transaction ------------------------------------------------------------------


def snapshot() -> dict[str, dict[Any, dict[str, Any]]]:
    """Every row of every table of ours, by primary key."""
    rows: dict[str, dict[Any, dict[str, Any]]] = {}
    for model in all_models():
        if _target(model).kind == "local":
            continue
        rows[model._meta.label] = {row["pk"]: row for row in model.objects.values("pk", *_columns(model))}
    return rows


def _columns(model: type[models.Model]) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


def changed_rows(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per table, the rows inserted, updated or deleted (their before or after image)."""
    changes: dict[str, list[dict[str, Any]]] = {}
    for label, rows_after in after.items():
        rows_before = before.get(label, {})
        touched = [row for pk, row in rows_after.items() if rows_before.get(pk) != row]
        touched += [row for pk, row in rows_before.items() if pk not in rows_after]
        if touched:
            changes[label] = touched
    return changes


def shard_values(label: str, rows: list[dict[str, Any]]) -> set[Any]:
    column = TABLES[label].column
    attname = next(f.attname for f in apps.get_model(label)._meta.concrete_fields if f.column == column)
    return {row[attname] for row in rows}


@pytest.mark.django_db
def test_ledger_writes_touch_one_merchant_only(demo: dict[str, User]) -> None:
    clerk = demo["clerk"]
    merchant = clerk.merchant
    assert merchant is not None
    issue_invoice(user=clerk, payload=copy.deepcopy(VALID_INVOICE))  # the first: the log is created
    before = snapshot()
    number = issue_invoice(user=clerk, payload=copy.deepcopy(VALID_INVOICE)).body["number"]
    red_letter_invoice(user=clerk, number=number, payload={"full": True})
    changes = changed_rows(before, snapshot())

    assert {"invoices.Invoice", "ledger.LogEntry", "ledger.TreeHead"} <= changes.keys(), changes.keys()
    reference = {label for label in changes if TABLES[label].kind == "reference"}
    assert reference == LEDGER_REFERENCE_WRITES.keys(), f"ledger writes changed reference tables: {reference}"
    for label, rows in changes.items():
        if label in LEDGER_REFERENCE_WRITES:
            assert {row["merchant_id"] for row in rows} == {merchant.pk}
            continue
        assert shard_values(label, rows) == {merchant.pk}, f"{label}: rows of other merchants changed"


@pytest.mark.django_db
def test_foreign_keys_between_distributed_tables_stay_within_a_merchant(demo: dict[str, User]) -> None:
    for username in ("clerk", "clerk2"):
        number = issue_invoice(user=demo[username], payload=copy.deepcopy(VALID_INVOICE)).body["number"]
        red_letter_invoice(user=demo[username], number=number, payload={"full": True})
    checked = 0
    quote = connection.ops.quote_name
    for model in all_models():
        target = _target(model)
        if target.kind != "distributed":
            continue
        for field in model._meta.concrete_fields:
            parent = field.related_model
            if not field.is_relation or parent is None or _target(parent).kind != "distributed":  # type: ignore[arg-type]
                continue
            parent_column = _target(parent).column  # type: ignore[arg-type]
            child_table, parent_table = quote(model._meta.db_table), quote(parent._meta.db_table)
            parent_pk = quote(parent._meta.pk.column)  # type: ignore[union-attr]
            sql = (  # names from the models' own metadata, quoted
                f"SELECT count(*) FROM {child_table} c JOIN {parent_table} p "  # noqa: S608
                f"ON p.{parent_pk} = c.{quote(field.column)} "
                f"WHERE p.{quote(parent_column)} <> c.{quote(target.column)}"
            )
            with connection.cursor() as cursor:
                cursor.execute(sql)
                (crossing,) = cursor.fetchone()
            assert crossing == 0, f"{model._meta.label}.{field.name} joins rows of different merchants"
            checked += 1
    assert checked >= 8
