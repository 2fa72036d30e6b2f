from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from fapiao.accounts import second_factor, selectors, services
from fapiao.accounts.choices import Role
from fapiao.accounts.cli import acting_user, add_user_argument, command_error, user_named
from fapiao.accounts.invitations import IssuedLink
from fapiao.accounts.mails import beijing
from fapiao.core.errors import FapiaoError


class Command(BaseCommand):
    help = (
        "Manage users as --user: list, invite (mails a link to choose a password), disable, enable, "
        "reset-password (mails a new link); `users bootstrap USERNAME` creates the first operator."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="the users you may see")
        listing.add_argument("--merchant", default="", help="only this merchant's users (USCC; staff only)")
        listing.add_argument("--role", default="", choices=["", *[role.value for role in Role]])
        invite = sub.add_parser("invite", help="create a user and mail them a link to choose their password")
        invite.add_argument("username")
        invite.add_argument("--role", required=True, choices=[role.value for role in Role])
        invite.add_argument("--merchant", default="", help="USCC (merchant admins: their own by default)")
        invite.add_argument("--last-name", default="")
        invite.add_argument("--first-name", default="")
        invite.add_argument("--email", default="", help="required: where the link is mailed")
        acting = [listing, invite]
        for name, text in (
            ("disable", "disable a user (they cannot sign in; their tokens are refused)"),
            ("enable", "enable a disabled user"),
            ("reset-password", "end the password, sessions and API tokens; mail a link to choose a new one"),
            ("reset-second-factor", "clear a staff member's lost second factor (operators)"),
        ):
            child = sub.add_parser(name, help=text)
            child.add_argument("username")
            acting.append(child)
        for child in acting:
            add_user_argument(child)
        bootstrap = sub.add_parser(
            "bootstrap", help="create the first operator and print their link (only while there is none)"
        )
        bootstrap.add_argument("username")
        bootstrap.add_argument("--email", default="", help="their address, for later password resets")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "bootstrap":
                user, issued = services.bootstrap_operator(
                    username=options["username"], email=options["email"]
                )
                self._report(user.username, issued)
                return
            actor = acting_user(options["user"])
            if action == "list":
                self._list(actor, options["merchant"], options["role"])
            elif action == "invite":
                merchant = (
                    selectors.merchant_get(user=actor, uscc=options["merchant"])
                    if options["merchant"]
                    else None
                )
                user, issued = services.invite_user(
                    actor=actor,
                    username=options["username"],
                    role=options["role"],
                    merchant=merchant,
                    last_name=options["last_name"],
                    first_name=options["first_name"],
                    email=options["email"],
                    print_link=True,
                )
                self._report(user.username, issued)
            elif action in {"disable", "enable"}:
                target = user_named(actor, options["username"])
                services.set_user_active(actor=actor, target=target, active=action == "enable")
                self.stdout.write(f"{target.username}: {'enabled' if action == 'enable' else 'disabled'}")
            elif action == "reset-second-factor":
                target = user_named(actor, options["username"])
                second_factor.reset(actor=actor, target=target)
                self.stdout.write(f"{target.username}: sets up a second factor again at the next sign-in")
            else:
                target = user_named(actor, options["username"])
                self._report(
                    target.username, services.reset_password(actor=actor, target=target, print_link=True)
                )
        except FapiaoError as error:
            raise command_error(error) from None

    def _list(self, actor: Any, merchant: str, role: str) -> None:
        users = list(selectors.user_list(user=actor, merchant=merchant, role=role))
        locked = selectors.locked_usernames([user.username for user in users])
        for user in users:
            state = "active" if user.is_active else "disabled"
            if user.username in locked:
                state += ",locked"
            if not user.has_usable_password():
                state += ",awaiting-password"
            elif user.must_change_password:
                state += ",one-time-password"
            uscc = user.merchant.uscc if user.merchant else "-"
            self.stdout.write(f"{user.pk:>6}  {user.username:<20} {user.role:<15} {uscc:<18}  {state}")

    def _report(self, username: str, issued: IssuedLink) -> None:
        expires = beijing(issued.invitation.expires_at)
        if issued.link is None:
            self.stdout.write(
                f"{username}: a link to choose a password was mailed to {issued.invitation.sent_to} "
                f"(it works once, until {expires} Beijing time)"
            )
            return
        self.stdout.write(
            f"{username}: nobody else could receive this link, so it is printed, not mailed. Hand it to "
            f"{username} yourself; it works once, until {expires} Beijing time, to choose a password:"
        )
        self.stdout.write(issued.link)
