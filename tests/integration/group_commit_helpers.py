"""Shared steps of the group-commit tests: turn batching on, and hold the writer so that what is
submitted next forms one batch."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from fapiao.platform import groupcommit


@pytest.fixture
def batching(settings: Any) -> Iterator[groupcommit.GroupCommitWriter]:
    settings.FAPIAO_WRITE_BATCHING = True
    yield groupcommit.writer()
    groupcommit.shutdown()


def hold_writer(writer: groupcommit.GroupCommitWriter) -> tuple[threading.Event, threading.Thread]:
    """Occupy the writer with a job that waits, so that what is submitted next forms one batch."""
    release = threading.Event()
    started = threading.Event()

    def blocker(unit: Any) -> None:
        started.set()
        release.wait(10)

    thread = threading.Thread(target=writer.submit, args=(blocker,))
    thread.start()
    assert started.wait(10)
    return release, thread
