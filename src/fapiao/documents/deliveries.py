"""Sending an invoice to its buyer by e-mail: the PDF, the XML and the receipt PDF in one message.

Through Django's mail framework to the configured SMTP server (``FAPIAO_SMTP_HOST`` and the
other SMTP settings).  Every
delivery is recorded before the message goes out (state ``sending``) and updated with what came
of it, in its own transaction, so a delivery is never lost and never half-recorded:

* the server accepted the message → ``sent``;
* the server refused it for good (a 5xx answer: no such mailbox, message rejected) →
  ``undeliverable``: trying again would not help; the clerk checks the address;
* the server could not be reached or answered "try later" (a 4xx, a timeout, a dropped
  connection) → ``failed`` with ``next_attempt_at``; ``fapiao deliveries retry`` (run by a timer)
  tries again after ``FAPIAO_DELIVERY_RETRY_MINUTES`` × 2^(attempts − 1), up to
  ``FAPIAO_DELIVERY_MAX_ATTEMPTS`` attempts, then gives up (``undeliverable``).

One message carries all the attachments or none: SMTP accepts or refuses a message whole.  A
malformed address is refused before anything is recorded (422).  The address is personal data:
stored encrypted, shown masked.
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, require
from fapiao.audit.services import record
from fapiao.core.errors import ConflictError, FapiaoError, FieldError, ValidationFailed, _
from fapiao.core.money import format_money
from fapiao.documents import secrets
from fapiao.documents.models import Delivery, DeliveryState, DocumentKind
from fapiao.documents.rendering import NoLedgerEntryError
from fapiao.documents.store import stored
from fapiao.invoices import findings
from fapiao.invoices.models import Invoice

log = logging.getLogger(__name__)

MAX_ADDRESS = 254
STUCK_AFTER = timedelta(minutes=10)  # a "sending" row this old was left by a crash: try again


class DeliveryRefusedError(FapiaoError):
    """The mail server refused the message, so it was not sent: {reason}. Check the buyer's address."""

    status = 502
    code = "mail_refused"


class DeliveryUnavailableError(FapiaoError):
    """The mail server cannot be reached ({reason}); nothing was sent. It is tried again automatically."""

    status = 503
    code = "mail_unavailable"


class InvoiceFlaggedError(ConflictError):
    """Invoice {number} differs from the ledger: it is not sent to the buyer until it is repaired."""

    code = "invoice_flagged"


@dataclass(frozen=True)
class Outcome:
    state: str
    code: str = ""
    reason: str = ""


def check_address(value: object) -> str:
    """A single e-mail address, trimmed; :class:`ValidationFailed` at ``to`` otherwise."""
    address = value.strip() if isinstance(value, str) else ""
    message = _("Enter one e-mail address, like name@example.com.")
    if not address or len(address) > MAX_ADDRESS or any(c in address for c in ",; \t\r\n"):
        raise ValidationFailed([FieldError("to", "bad_email", message)])
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationFailed([FieldError("to", "bad_email", message)]) from None
    return address


def _message(delivery: Delivery, invoice: Invoice, address: str) -> EmailMessage:
    kinds = [DocumentKind.INVOICE_PDF, DocumentKind.INVOICE_XML]
    if invoice.ledger_seq is not None:
        kinds.append(DocumentKind.RECEIPT_PDF)
    documents = [stored(invoice, kind) for kind in kinds]
    total = format_money(invoice.total_with_tax)
    body = (
        f"您好：\n\n{invoice.seller_name} 向您开具了电子发票，号码 {invoice.number}，"
        f"开票日期 {invoice.issued_on:%Y年%m月%d日}，价税合计 ¥{total}。\n\n"
        "附件：发票 PDF、发票 XML（数电票格式）"
        + ("，以及发票存证回执 PDF（内嵌 receipt.json，可离线验证）" if len(documents) > 2 else "")
        + "。\n\n"
        f"查验本发票：{settings.FAPIAO_PUBLIC_URL}/check/\n\n"
        "本邮件由发票保全系统自动发送，请勿直接回复。\n"
    )
    message = EmailMessage(
        subject=f"电子发票 {invoice.number}（{invoice.seller_name}）",
        body=body,
        from_email=settings.FAPIAO_MAIL_FROM,
        to=[address],
        headers={"X-Fapiao-Delivery": str(delivery.uid)},
    )
    for document in documents:
        message.attach(document.name, document.data, document.content_type)
    delivery.documents = [{"kind": d.kind, "name": d.name, "sha256": d.sha256} for d in documents]
    return message


def _send(message: EmailMessage) -> Outcome:
    try:
        connection = get_connection(fail_silently=False, timeout=settings.FAPIAO_SMTP_TIMEOUT_SECONDS)
        sent = connection.send_messages([message])
    except smtplib.SMTPRecipientsRefused as refused:
        code, text = next(iter(refused.recipients.values()))
        return _answered(code, text)
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as answered:
        return _answered(answered.smtp_code, answered.smtp_error)
    except smtplib.SMTPAuthenticationError:
        return Outcome(DeliveryState.FAILED, "smtp_auth", "the mail server did not accept our sign-in")
    except (OSError, smtplib.SMTPException) as error:  # refused connection, timeout, dropped line
        return Outcome(DeliveryState.FAILED, "smtp_unreachable", type(error).__name__)
    if not sent:
        return Outcome(DeliveryState.FAILED, "smtp_not_sent", "the mail backend sent nothing")
    return Outcome(DeliveryState.SENT)


def _answered(code: int, text: bytes | str) -> Outcome:
    reason = f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"[:300]
    if 500 <= code < 600:
        return Outcome(DeliveryState.UNDELIVERABLE, "smtp_refused", reason)
    return Outcome(DeliveryState.FAILED, "smtp_deferred", reason)


def _backoff(attempts: int) -> timedelta:
    return timedelta(minutes=settings.FAPIAO_DELIVERY_RETRY_MINUTES * 2 ** max(attempts - 1, 0))


def _attempt(delivery: Delivery, invoice: Invoice) -> Outcome:
    """Send once and record the outcome (its own transaction); the row must be ``sending``."""
    address = secrets.open_recipient(delivery)
    try:
        outcome = _send(_message(delivery, invoice, address))
    except NoLedgerEntryError:
        outcome = Outcome(DeliveryState.UNDELIVERABLE, "no_ledger_entry", "no ledger entry")
    now = timezone.now()
    attempts = delivery.attempts + 1
    if outcome.state == DeliveryState.FAILED and attempts >= settings.FAPIAO_DELIVERY_MAX_ATTEMPTS:
        outcome = Outcome(DeliveryState.UNDELIVERABLE, outcome.code, outcome.reason)
    Delivery.objects.filter(pk=delivery.pk).update(
        state=outcome.state,
        attempts=attempts,
        last_attempt_at=now,
        sent_at=now if outcome.state == DeliveryState.SENT else None,
        next_attempt_at=now + _backoff(attempts) if outcome.state == DeliveryState.FAILED else None,
        error_code=outcome.code,
        error=outcome.reason,
        documents=delivery.documents,
    )
    log.info("delivery %s of %s: %s %s", delivery.uid, invoice.number, outcome.state, outcome.code)
    return outcome


def deliver_invoice(*, user: User, invoice: Invoice, to: object) -> Delivery:
    """E-mail the invoice's documents to ``to`` now; the delivery is recorded whatever happens.

    Raises :class:`ValidationFailed` for a malformed address (nothing recorded),
    :class:`DeliveryRefusedError` when the server refused for good and
    :class:`DeliveryUnavailableError` when it will be tried again — both after recording.
    """
    require(user, Action.DELIVER_INVOICES)
    address = check_address(to)
    if findings.active_for_merchant(invoice.merchant_id).filter(number=invoice.number).exists():
        raise InvoiceFlaggedError(number=invoice.number)  # never handed over as if it were fine
    uid = uuid.uuid4()
    with transaction.atomic():
        delivery = Delivery.objects.create(
            merchant_id=invoice.merchant_id,
            invoice=invoice,
            uid=uid,
            recipient_masked=secrets.mask_address(address),
            created_by=user,
            last_attempt_at=timezone.now(),
            **secrets.seal_recipient(merchant_id=invoice.merchant_id, uid=uid, address=address),
        )
        record(
            actor=user,
            action="invoice.deliver",
            target=invoice,
            merchant=invoice.merchant,
            after={"to": delivery.recipient_masked, "delivery": str(uid)},
        )
    outcome = _attempt(delivery, invoice)
    delivery.refresh_from_db()
    if outcome.state == DeliveryState.UNDELIVERABLE:
        raise DeliveryRefusedError(reason=outcome.reason)
    if outcome.state == DeliveryState.FAILED:
        raise DeliveryUnavailableError(reason=outcome.reason)
    return delivery


def due(now: datetime) -> list[Delivery]:
    """Deliveries to try again: failed ones whose time has come, and ones a crash left sending."""
    ready = Q(state=DeliveryState.FAILED, next_attempt_at__lte=now)
    stuck = Q(state=DeliveryState.SENDING, last_attempt_at__lte=now - STUCK_AFTER)
    return list(
        Delivery.objects.filter(ready | stuck).select_related("invoice", "invoice__merchant").order_by("pk")
    )


def retry_due(*, now: datetime | None = None) -> dict[str, int]:
    """Try every due delivery once (``fapiao deliveries retry``); counts by outcome.

    A delivery is claimed by moving it to ``sending`` only if it is still as we found it, so two
    runs at once never send the same one twice.
    """
    moment = now or timezone.now()
    counts = {state.value: 0 for state in DeliveryState if state != DeliveryState.SENDING}
    for delivery in due(moment):
        claimed = Delivery.objects.filter(
            pk=delivery.pk, state=delivery.state, attempts=delivery.attempts
        ).update(state=DeliveryState.SENDING, last_attempt_at=moment)
        if not claimed:
            continue
        counts[_attempt(delivery, delivery.invoice).state] += 1
    return counts


def deliveries_of(invoice: Invoice) -> list[Delivery]:
    return list(
        Delivery.objects.filter(merchant_id=invoice.merchant_id, invoice=invoice).select_related("created_by")
    )
