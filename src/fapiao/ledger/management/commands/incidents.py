"""``fapiao incidents list | show ID | acknowledge ID | resolve ID --note TEXT``.

Integrity incidents (数据完整性事件): open → acknowledged → resolved with a note.  Acknowledging
and resolving are an operator's acts: say who you are with ``--user`` (or ``FAPIAO_USER``).
``--version`` guards against two operators changing the same incident at once.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import get_language, gettext, gettext_noop

from fapiao.accounts.cli import acting_user, add_user_argument
from fapiao.core.choices import IncidentKind
from fapiao.core.errors import FapiaoError, ValidationFailed
from fapiao.ledger import incidents
from fapiao.ledger.checks import localized_reason
from fapiao.ledger.models import IntegrityIncident
from fapiao.ledger.verify import code_title, summary_in_words


def _columns(text: str) -> int:
    """Terminal columns of ``text`` (Chinese characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    """Left-align ``text`` in ``width`` terminal columns."""
    return text + " " * max(1, width - _columns(text))


def _local(value: Any) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "—"


class Command(BaseCommand):
    help = "Integrity incidents: list them, show one, acknowledge one, resolve one with a note."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="open (unresolved) incidents; --all includes resolved ones")
        listing.add_argument("--all", action="store_true", help="include resolved incidents")
        listing.add_argument("--json", action="store_true", help="print JSON")
        show = sub.add_parser("show", help="one incident with everything recorded about it")
        show.add_argument("incident_id", type=int)
        show.add_argument("--json", action="store_true", help="print JSON")
        ack = sub.add_parser("acknowledge", help="open → acknowledged: you are working on it")
        ack.add_argument("incident_id", type=int)
        ack.add_argument("--version", type=int, default=None, help="the version you read (from show)")
        add_user_argument(ack)
        resolve = sub.add_parser("resolve", help="acknowledged → resolved, with a note")
        resolve.add_argument("incident_id", type=int)
        resolve.add_argument("--note", required=True, help="what was found and what was done")
        resolve.add_argument("--version", type=int, default=None, help="the version you read (from show)")
        add_user_argument(resolve)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "list":
                self._list(include_resolved=options["all"], as_json=options["json"])
            elif action == "show":
                self._show(options["incident_id"], as_json=options["json"])
            elif action == "acknowledge":
                incident = incidents.acknowledge(
                    incident_id=options["incident_id"],
                    by=acting_user(options["user"]),
                    version=options["version"],
                )
                self.stdout.write(
                    gettext("Integrity incident {id} acknowledged by {user} (version {version}).").format(
                        id=incident.pk, user=options["user"], version=incident.version
                    )
                )
            else:
                incident = incidents.resolve(
                    incident_id=options["incident_id"],
                    by=acting_user(options["user"]),
                    note=options["note"],
                    version=options["version"],
                )
                self.stdout.write(
                    gettext("Integrity incident {id} resolved by {user}.").format(
                        id=incident.pk, user=options["user"]
                    )
                )
                remaining = incidents.open_incident_count()
                self.stdout.write(
                    gettext("Incidents still open: {count}.").format(count=remaining)
                    if remaining
                    else gettext("No incident is open any more; /readyz reports ok again.")
                )
        except ValidationFailed as error:
            problems = "; ".join(item.render(gettext) for item in error.errors)
            raise CommandError(f"{error.render(gettext)} {problems}".strip()) from None
        except FapiaoError as error:
            raise CommandError(error.render(gettext)) from None

    def _list(self, *, include_resolved: bool, as_json: bool) -> None:
        rows = list(incidents.incidents(include_resolved=include_resolved))
        if as_json:
            documents = [incidents.incident_document(row) for row in rows]
            self.stdout.write(json.dumps({"incidents": documents}, ensure_ascii=False, indent=2))
            return
        if not rows:
            self.stdout.write(
                gettext("No integrity incidents.")
                if include_resolved
                else gettext("No open integrity incidents.")
            )
            return
        widths = (6, 14, 21, 20, 7, 7)
        header = (
            gettext_noop("ID"),
            gettext_noop("STATE"),
            gettext_noop("OPENED (Beijing)"),
            gettext_noop("LOG"),
            gettext_noop("INDEX"),
            gettext_noop("SIZE"),
        )
        self.stdout.write(
            "".join(_pad(gettext(h), w) for h, w in zip(header, widths, strict=True)) + gettext("REASON")
        )
        for row in rows:
            details = row.details or {}
            log_name, index, size = (str(details.get(name, "—")) for name in ("log", "index", "size"))
            cells = (str(row.pk), row.state, _local(row.opened_at), log_name, index, size)
            self.stdout.write(
                "".join(_pad(c, w) for c, w in zip(cells, widths, strict=True))
                + str(details.get("reason", row.kind))
            )

    def _show(self, incident_id: int, *, as_json: bool) -> None:
        incident: IntegrityIncident = incidents.get_incident(incident_id)
        document = incidents.incident_document(incident)
        if as_json:
            self.stdout.write(json.dumps(document, ensure_ascii=False, indent=2))
            return
        details = dict(incident.details or {})
        reason = str(details.get("reason", incident.kind))
        language = get_language() or "zh-hans"
        if "summary" in details:  # each finding code by its name (the one table of names)
            details["summary"] = summary_in_words(str(details["summary"]), language)
        explained = localized_reason(reason, details) or str(details.get("message", ""))
        lines = [
            (gettext("Incident"), str(incident.pk)),
            (gettext("Kind"), incident.kind),
            (gettext("State"), incident.state),
            (gettext("Version"), str(incident.version)),
            (gettext("Opened"), _local(incident.opened_at)),
            (gettext("Merchant (log)"), str(details.get("log", "—"))),
        ]
        if incident.kind == IncidentKind.VERIFY_FAILED:
            findings = (
                ", ".join(
                    f"{code_title(str(key).split('@')[0].split('.')[0], language)} {key}"
                    for key in details.get("findings", [])
                )
                or "—"
            )
            lines += [(gettext("Findings"), findings), (gettext("Verify run"), str(details.get("run", "—")))]
        elif incident.kind == IncidentKind.MIGRATION_CHANGED_DATA:  # fapiao.ops.migration_check
            lines.append((gettext("Migrations applied"), ", ".join(details.get("migrations", [])) or "—"))
            lines += [
                (str(change.get("measure")), f"{change.get('before', '—')} → {change.get('after', '—')}")
                for change in details.get("changes", [])
            ]
        else:
            lines += [
                (gettext("Entry index"), str(details.get("index", "—"))),
                (gettext("Invoice number"), str(details.get("invoice_number") or "—")),
                (
                    gettext("Receipt head"),
                    f"size {details.get('size')}, root {details.get('root')}, at {details.get('at')}",
                ),
                (gettext("Signed by key"), str(details.get("key_id", "—"))),
            ]
        lines += [
            (gettext("Reason"), f"{reason}: {explained}"),
            (
                gettext("Acknowledged"),
                f"{_local(incident.acknowledged_at)} {document['acknowledged_by'] or ''}",
            ),
            (gettext("Resolved"), f"{_local(incident.resolved_at)} {document['resolved_by'] or ''}"),
            (gettext("Resolution note"), incident.resolution_note or "—"),
        ]
        width = max(_columns(label) for label, _ in lines) + 3
        for label, value in lines:
            self.stdout.write(_pad(label + ":", width) + value.strip())
