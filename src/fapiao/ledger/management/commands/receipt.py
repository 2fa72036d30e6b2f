"""``fapiao receipt verify RECEIPT.json [--json] [--lang zh|en]`` against this installation's keys.

``fapiao receipt verify FILE --public-key KEYS`` never gets here: ``fapiao.cli`` hands it to the
settings-free verifier in :mod:`fapiao.core.receipt`.  Without ``--public-key`` this command
verifies against the installation's key registry (``keys.json`` under ``FAPIAO_KEYS_DIR``),
still offline: it opens no database connection and no network connection.

Exit status: 0 valid, 1 invalid receipt, 2 usage (unreadable receipt or key registry).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import translation
from django.utils.translation import gettext

from fapiao.core.errors import FapiaoError
from fapiao.core.receipt import verify_receipt
from fapiao.core.signing import KeyRegistry, load_public_keys
from fapiao.platform import keys

MAX_RECEIPT_BYTES = 1024 * 1024


class Command(BaseCommand):
    help = (
        "Verify a fapiao-receipt/1 file offline against this installation's public keys "
        "(or --public-key FILE); no database, no network."
    )
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        verify = sub.add_parser("verify", help="verify a receipt offline")
        verify.add_argument("receipt", help="the receipt JSON file")
        verify.add_argument(
            "--public-key",
            default=None,
            help="key registry JSON, PEM public key or base64 raw key (default: this installation's keys)",
        )
        verify.add_argument("--json", action="store_true", help="print the verdict as JSON")
        verify.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the verdict")

    def handle(self, *args: Any, **options: Any) -> None:
        with translation.override("zh-hans" if options["lang"] == "zh" else "en"):
            code = self._verify(options)
        if code:
            raise SystemExit(code)

    def _registry(self, public_key: str | None) -> KeyRegistry | None:
        if public_key:
            try:
                return load_public_keys(public_key)
            except FapiaoError:
                self.stderr.write(
                    gettext(
                        "The public key file {path} is not a key registry, a PEM Ed25519 public key "
                        "or a base64 key."
                    ).format(path=public_key)
                )
                return None
        path = keys.registry_path()
        if not path.exists():
            self.stderr.write(
                gettext(
                    "This installation has no key registry at {path}. Give the public keys with "
                    "--public-key FILE (from /api/v1/ledger/public-keys)."
                ).format(path=path)
            )
            return None
        try:
            return KeyRegistry.load(path)
        except FapiaoError as error:
            self.stderr.write(
                gettext("Cannot read the key registry {path}: {reason}").format(path=path, reason=error)
            )
            return None

    def _verify(self, options: dict[str, Any]) -> int:
        path = Path(options["receipt"])
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_RECEIPT_BYTES + 1)
        except OSError as error:
            self.stderr.write(
                gettext("Cannot read the receipt file {path}: {reason}.").format(
                    path=path, reason=error.strerror
                )
            )
            return 2
        if len(data) > MAX_RECEIPT_BYTES:
            self.stderr.write(gettext("{path} is too large to be a receipt.").format(path=path))
            return 2
        registry = self._registry(options.get("public_key"))
        if registry is None:
            return 2
        verdict = verify_receipt(data, registry)
        lang = options["lang"]
        if options["json"]:
            self.stdout.write(json.dumps(verdict.to_json(), ensure_ascii=False, indent=2))
        elif verdict.ok:
            self.stdout.write(gettext("VALID: {message}").format(message=verdict.message(lang)))
        else:
            self.stdout.write(
                gettext("INVALID ({code}): {message}").format(
                    code=verdict.code, message=verdict.message(lang)
                )
            )
        return 0 if verdict.ok else 1
