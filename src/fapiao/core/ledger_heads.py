"""The signed heads of one log and the witness file's view of them (part of :class:`LogChecker`).

Each head is checked against the root recomputed at its size, its key's trust at its time, and
(the latest head, or every head with ``--deep``) its signature; each size the witness saw is
checked against the recomputed root and the stored head.  Pure Python, no Django.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fapiao.core.ledger_findings import Finding, FindingCode, Findings
from fapiao.core.ledger_witness import WitnessLog
from fapiao.core.signing import KeyRegistry, b64encode, verify_head

C = FindingCode


@dataclass(frozen=True)
class HeadRow:
    size: int
    root: bytes
    at: str
    key_id: str
    signature: str

    def document(self, log: str) -> dict[str, Any]:
        """The signed head as the API and receipts show it."""
        root = b64encode(self.root)
        return {"log": log, "size": self.size, "root": root, "at": self.at, "key_id": self.key_id}


class HeadChecks:
    """The head and witness checks of :class:`~fapiao.core.ledger_check.LogChecker`."""

    log: str
    keys: KeyRegistry
    witness: WitnessLog | None
    deep: bool
    findings: Findings
    log_size: int
    head_size: int
    heads: int
    heads_checked: int
    signatures_checked: int
    _unverifiable: list[int]
    _witness_sizes: list[int]
    _witness_next: int

    def _check_head(self, head: HeadRow, root: bytes | None) -> None:
        self.heads += 1
        if root is None:
            self._unverifiable.append(head.size)
        else:
            self.heads_checked += 1
            if root != head.root:
                self.findings.add(Finding(C.HEAD_ROOT_MISMATCH, self.log, size=head.size))
        trust = self.keys.trust(head.key_id, head.at)
        if trust == "unknown_key":
            self.findings.add(
                Finding(C.UNKNOWN_KEY, self.log, size=head.size, params={"key_id": head.key_id})
            )
        elif trust == "key_compromised":
            record = self.keys.get(head.key_id)
            since = record.compromised_since if record else "?"
            params = {"key_id": head.key_id, "at": head.at, "since": since}
            self.findings.add(Finding(C.KEY_COMPROMISED, self.log, size=head.size, params=params))
        elif self.deep or head.size == self.head_size:
            self.signatures_checked += 1
            record = self.keys.get(head.key_id)
            assert record is not None  # trust() said "ok"
            if not verify_head(head.document(self.log), head.signature, record.public_raw):
                self.findings.add(Finding(C.BAD_SIGNATURE, self.log, size=head.size))

    def _check_witness(self, size: int, head: HeadRow | None, root: bytes | None) -> None:
        assert self.witness is not None
        seen = self.witness.roots[size]
        db_size = max(self.log_size, self.head_size)
        if size in self.witness.forks:
            self._witness_finding(size, "fork")
        if size > db_size:
            self._witness_finding(size, "smaller", db_size=db_size)
        elif root is not None and root != seen:
            self._witness_finding(size, "root")
        elif head is None:
            self._witness_finding(size, "no_head")
        elif head.root != seen:
            self._witness_finding(size, "head")

    def _witness_finding(self, size: int, variant: str, **params: Any) -> None:
        self.findings.add(Finding(C.WITNESS_MISMATCH, self.log, size=size, variant=variant, params=params))

    def _close_heads(self) -> None:
        """At the end of the log: heads no recomputed root could check, witness sizes past the
        log, and a witness that lags behind the latest head."""
        if self._unverifiable:
            params = {"count": len(self._unverifiable)}
            finding = Finding(C.HEAD_UNVERIFIABLE, self.log, size=self._unverifiable[0], params=params)
            self.findings.add(finding)
        for size in self._witness_sizes[self._witness_next :]:
            self._check_witness(size, None, None)
        self._witness_next = len(self._witness_sizes)
        witnessed = self.witness.max_size if self.witness else 0
        if self.head_size and not witnessed:
            self.findings.add(Finding(C.WITNESS_LAG, self.log, size=self.head_size, variant="none"))
        elif witnessed < self.head_size:
            params = {"witness_size": witnessed}
            self.findings.add(
                Finding(C.WITNESS_LAG, self.log, size=self.head_size, variant="behind", params=params)
            )
