"""The witness file as verify reads it: the root each log had at each size a head was seen.

Pure Python, no Django.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fapiao.core.errors import FapiaoError
from fapiao.core.ledger_findings import Finding, FindingCode
from fapiao.core.merkle import HASH_SIZE
from fapiao.core.signing import KeyRegistry, b64decode_strict, verify_head

__all__ = ["WitnessLog", "parse_witness"]

C = FindingCode


@dataclass
class WitnessLog:
    """What the witness file says about one log: the root it saw at each size."""

    log: str
    roots: dict[int, bytes] = field(default_factory=dict)
    forks: set[int] = field(default_factory=set)

    @property
    def max_size(self) -> int:
        return max(self.roots, default=0)


def _witness_head(line: bytes) -> tuple[dict[str, Any], str, bytes]:
    item = json.loads(line)
    head, signature = item["head"], item["signature"]
    ok = (
        isinstance(head, dict)
        and isinstance(signature, str)
        and isinstance(head.get("log"), str)
        and isinstance(head.get("size"), int)
        and isinstance(head.get("root"), str)
    )
    if not ok:
        raise ValueError("not a signed head")
    root = b64decode_strict(head["root"])
    if len(root) != HASH_SIZE:
        raise ValueError("root is not 32 bytes")
    return head, signature, root


def parse_witness(
    lines: Iterable[bytes], *, keys: KeyRegistry | None = None
) -> tuple[dict[str, WitnessLog], list[Finding]]:
    """Read witness lines (``{"head": {...}, "signature": ...}``).  With ``keys``, check every signature.

    A last line cut short by a crash (no newline) is reported as info; any other unreadable
    line is an error.
    """
    logs: dict[str, WitnessLog] = {}
    findings: list[Finding] = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            head, signature, root = _witness_head(raw)
        except (ValueError, KeyError, TypeError, FapiaoError):
            if raw.endswith(b"\n"):
                findings.append(Finding(C.WITNESS_MISMATCH, "", variant="malformed", params={"line": number}))
            else:
                findings.append(Finding(C.WITNESS_LAG, "", variant="partial_line", params={"line": number}))
            continue
        witnessed = logs.setdefault(head["log"], WitnessLog(head["log"]))
        size = head["size"]
        if witnessed.roots.setdefault(size, root) != root:
            witnessed.forks.add(size)
        if keys is not None and not _trusted_signature(head, signature, keys):
            params = {"line": number}
            findings.append(
                Finding(C.WITNESS_MISMATCH, head["log"], size=size, variant="signature", params=params)
            )
    return logs, findings


def _trusted_signature(head: Mapping[str, Any], signature: str, keys: KeyRegistry) -> bool:
    key_id, at = head.get("key_id"), head.get("at")
    if not isinstance(key_id, str) or not isinstance(at, str) or keys.trust(key_id, at) != "ok":
        return False
    record = keys.get(key_id)
    return record is not None and verify_head(head, signature, record.public_raw)
