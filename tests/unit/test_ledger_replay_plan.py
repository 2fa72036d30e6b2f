"""Which receipts a replay appends and which it holds (fapiao.core.ledger_replay)."""

from __future__ import annotations

import pytest

from fapiao.core.ledger_replay import plan_log


@pytest.mark.parametrize(
    ("size", "indexes", "append", "held", "present", "gap"),
    [
        (3, [3, 4, 5], [3, 4, 5], [], [], None),
        (3, [5, 3, 4, 4], [3, 4, 5], [], [], None),  # any order, duplicates once
        (3, [0, 1, 3], [3], [], [0, 1], None),  # receipts for entries the log holds are only checked
        (3, [3, 5, 6], [3], [5, 6], [], 4),  # nothing covers 4: 5 and 6 wait
        (3, [4, 5], [], [4, 5], [], 3),  # nothing covers the first missing index
        (0, [], [], [], [], None),
    ],
)
def test_the_longest_covered_prefix_is_appended_and_the_rest_held(  # noqa: PLR0917  (parameters)
    size, indexes, append, held, present, gap
):
    plan = plan_log(size, indexes)
    assert (plan.append, plan.held, plan.present, plan.gap) == (append, held, present, gap)
