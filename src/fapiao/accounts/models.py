"""Merchants (tenants), their users and number segments, and API tokens."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from fapiao.accounts.choices import MERCHANT_ROLES, Role
from fapiao.core.choices import TokenScope

# A list in a fixed order: the constraint below is recorded in a migration, and iterating the
# MERCHANT_ROLES set would give another order in another process (a spurious new migration).
MERCHANT_ROLE_VALUES = [Role.MERCHANT_ADMIN.value, Role.CLERK.value]
assert set(MERCHANT_ROLE_VALUES) == set(MERCHANT_ROLES)


class Merchant(models.Model):
    """A tenant, identified by its 统一社会信用代码 (USCC)."""

    uscc = models.CharField(_("unified social credit code"), max_length=18, unique=True)
    name = models.CharField(_("name"), max_length=100)
    address = models.CharField(_("address"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=30, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Made by `fapiao demo`, which touches nothing it did not make (fapiao.accounts.demo).
    is_demo = models.BooleanField(_("demo data"), default=False, editable=False)

    class Meta:
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")

    def __str__(self) -> str:
        return f"{self.name} ({self.uscc})"


class User(AbstractUser):
    """A person: a merchant user (belongs to one merchant) or operating-organisation staff."""

    role = models.CharField(_("role"), max_length=20, choices=[(r.value, r.value) for r in Role])
    merchant = models.ForeignKey(
        Merchant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="users",
        verbose_name=_("merchant"),
    )
    # Set with a one-time password (invitation, reset); cleared when the user picks their own.
    must_change_password = models.BooleanField(_("must change password"), default=False)
    # Staff's second factor (TOTP, RFC 6238): the secret is encrypted with the data keys, which never
    # live in the database; the last accepted time step stops a code from being used twice.
    totp_secret = models.BinaryField(null=True, blank=True, editable=False)
    totp_confirmed_at = models.DateTimeField(_("second factor set up at"), null=True, blank=True)
    totp_last_step = models.BigIntegerField(null=True, blank=True, editable=False)
    # A lead reviewer assigns recovery cases to reviewers.
    is_lead = models.BooleanField(_("lead reviewer"), default=False)
    # Made by `fapiao demo`, which touches nothing it did not make (fapiao.accounts.demo).
    is_demo = models.BooleanField(_("demo data"), default=False, editable=False)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            # Merchant roles have a merchant; staff roles have none.
            models.CheckConstraint(
                name="user_merchant_matches_role",
                condition=(
                    Q(role__in=MERCHANT_ROLE_VALUES, merchant__isnull=False)
                    | (~Q(role__in=MERCHANT_ROLE_VALUES) & Q(merchant__isnull=True))
                ),
            ),
        ]

    @property
    def is_merchant_user(self) -> bool:
        return self.role in MERCHANT_ROLES

    @property
    def display_name(self) -> str:
        """The name people see: family name first, no space (周审计), else the username."""
        return f"{self.last_name}{self.first_name}".strip() or self.username

    def set_password(self, raw_password: str | None) -> None:
        """A password set here is the user's own, unless a service marks it one-time afterwards."""
        super().set_password(raw_password)
        self.must_change_password = False


class NumberSegment(models.Model):
    """A block of invoice serials (号段) the operator allocated to a merchant for one year.

    Numbers are YY + province + channel + 15-digit serial; a merchant issues gap-free from
    ``next_serial`` upwards, in the same transaction as the invoice.
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="segments")
    year = models.PositiveSmallIntegerField(_("year (YY)"))
    province = models.CharField(_("province code"), max_length=2)
    channel = models.PositiveSmallIntegerField(_("channel digit"))
    first_serial = models.BigIntegerField(_("first serial"))
    last_serial = models.BigIntegerField(_("last serial"))
    next_serial = models.BigIntegerField(_("next serial"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("number segment")
        verbose_name_plural = _("number segments")
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "year", "province", "channel", "first_serial"],
                name="segment_unique_start",
            ),
            models.CheckConstraint(name="segment_bounds", condition=Q(first_serial__lte=F("last_serial"))),
            models.CheckConstraint(
                name="segment_next_in_range",
                condition=Q(next_serial__gte=F("first_serial")) & Q(next_serial__lte=F("last_serial") + 1),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.year:02d}{self.province}{self.channel} {self.first_serial}–{self.last_serial}"

    @property
    def remaining(self) -> int:
        return self.last_serial + 1 - self.next_serial


class ApiToken(models.Model):
    """An API token.  Only a keyed HMAC-SHA256 digest is stored; the token is shown once."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100)
    scope = models.CharField(_("scope"), max_length=10, choices=[(s.value, s.value) for s in TokenScope])
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"


class Invitation(models.Model):
    """A single-use link to choose one's password: for a new account, or after a reset.

    Only a keyed HMAC-SHA256 of the link's token is stored; the token itself is in the link, which
    is mailed to the user (printed only on the server's command line, for a first operator or a
    merchant's first administrator when no mail server is configured).  The person who asked for
    the link never sees it nor any password.
    """

    PURPOSE_INVITE = "invite"
    PURPOSE_RESET = "reset"

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="invitations")
    purpose = models.CharField(
        max_length=10, choices=[(PURPOSE_INVITE, PURPOSE_INVITE), (PURPOSE_RESET, PURPOSE_RESET)]
    )
    digest = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    sent_to = models.CharField(max_length=254, blank=True)  # "" when printed on the command line
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)  # replaced by a newer link

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        indexes = [models.Index(fields=["user", "used_at", "revoked_at"], name="invitation_open")]

    def __str__(self) -> str:
        return f"{self.purpose} {self.user_id} {self.created_at:%Y-%m-%d}"
