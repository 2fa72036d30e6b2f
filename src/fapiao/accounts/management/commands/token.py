from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from fapiao.accounts.cli import command_error
from fapiao.accounts.models import ApiToken, User
from fapiao.accounts.tokens import TOKEN_PREFIX, create_token, revoke_token, token_digest
from fapiao.core.errors import FapiaoError


class Command(BaseCommand):
    help = (
        "Create, list or revoke API tokens; `token create USERNAME --scope read|write` prints only the token."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token and print it (shown once)")
        create.add_argument("username")
        create.add_argument("--scope", choices=["read", "write"], default="read")
        create.add_argument("--name", default="cli")
        create.add_argument("--days", type=int, default=90)
        listing = sub.add_parser("list", help="list a user's tokens (never the tokens themselves)")
        listing.add_argument("username")
        revoke = sub.add_parser("revoke", help="revoke a token by its prefix or id")
        revoke.add_argument("token_id")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "revoke":
            self._revoke(options["token_id"])
            return
        try:
            user = User.objects.get(username=options["username"])
        except User.DoesNotExist:
            raise CommandError(f"no such user: {options['username']}") from None
        if action == "create":
            try:
                _token, plaintext = create_token(
                    user=user, scope=options["scope"], name=options["name"], days=options["days"]
                )
            except FapiaoError as error:
                raise command_error(error) from None
            self.stdout.write(plaintext)
        else:
            for token in user.api_tokens.order_by("created_at"):
                state = "revoked" if token.revoked_at else "active"
                used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
                self.stdout.write(
                    f"{token.public_id}  {token.prefix}…  {token.scope:<5}  {token.name}  "
                    f"expires {token.expires_at:%Y-%m-%d}  last used {used}  {state}"
                )

    def _revoke(self, token_id: str) -> None:

        if token_id.startswith(TOKEN_PREFIX) and len(token_id) > 12:
            queryset = ApiToken.objects.filter(digest=token_digest(token_id))
        elif token_id.startswith(TOKEN_PREFIX):
            queryset = ApiToken.objects.filter(prefix=token_id)
        else:
            queryset = ApiToken.objects.filter(public_id=token_id)
        try:
            matches = list(queryset[:2])
        except ValidationError:  # not a UUID
            matches = []
        if len(matches) != 1:
            raise CommandError(f"no single token matches {token_id!r}; use the id from `token list`")
        revoke_token(token=matches[0])
        self.stdout.write(f"revoked {matches[0].public_id}")
