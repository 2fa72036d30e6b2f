"""Which receipts a ledger replay can append (``fapiao ledger replay``), without a database.

A log cannot skip an index: from its present size, the receipts append the longest run of
consecutive indexes they cover; every receipt beyond the first index no receipt covers is held,
to be appended once the missing one turns up.  Pure Python, no Django.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Plan", "plan_log"]


@dataclass(frozen=True)
class Plan:
    """For one log: the indexes to append (consecutive, from its size) and those held."""

    size: int  # the log's size before the replay
    append: list[int]
    held: list[int]
    present: list[int]  # receipts for entries the log already holds (checked, nothing to do)

    @property
    def gap(self) -> int | None:
        """The first index no receipt covers, when a receipt lies beyond it."""
        return self.size + len(self.append) if self.held else None


def plan_log(size: int, indexes: Iterable[int]) -> Plan:
    """What receipts for ``indexes`` (duplicates allowed) do to a log of ``size`` entries."""
    wanted = sorted(set(indexes))
    present = [i for i in wanted if i < size]
    beyond = [i for i in wanted if i >= size]
    append: list[int] = []
    for index in beyond:
        if index != size + len(append):
            break
        append.append(index)
    held = beyond[len(append) :]
    return Plan(size, append, held, present)
