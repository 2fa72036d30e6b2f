from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "fapiao.audit"
    label = "audit"
    verbose_name = "audit trail"

    def ready(self) -> None:
        # Models load only once the registry is ready; the platform's refusals, API and pages (below us),
        # and the accounts app learn from here how to record.
        from fapiao.audit import refusals, signals  # noqa: PLC0415  app loading
        from fapiao.audit.refusals import record_refusal  # noqa: PLC0415  app loading
        from fapiao.audit.services import record  # noqa: PLC0415  app loading
        from fapiao.platform.auditing import register_recorder  # noqa: PLC0415  app loading
        from fapiao.platform.errors import REFUSED  # noqa: PLC0415  app loading

        signals.connect()
        refusals.connect()  # closed hours of anonymous refusals get their summary record
        register_recorder(record)
        if record_refusal not in REFUSED:
            REFUSED.append(record_refusal)
