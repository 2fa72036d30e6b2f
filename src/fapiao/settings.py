"""Django settings, read from the environment with safe defaults.

Every setting a deployment may change is a ``FAPIAO_*`` environment variable and is
listed in ``docs/operations/settings.md`` (a test checks that list).
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF

from fapiao.core.database_url import parse_multi_host
from fapiao.platform.filemodes import private_umask

# First of all: what this process creates (the database and its WAL, keys, witness files, evidence,
# mail, logs) is for the service account only — 0600 files, 0700 directories (issue 13, finding 7).
private_umask()


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


PACKAGE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(env("FAPIAO_VAR_DIR", str(Path.cwd() / "var"))).resolve()
KEYS_DIR = Path(env("FAPIAO_KEYS_DIR", str(VAR_DIR / "keys"))).resolve()

PRODUCTION = env_bool("FAPIAO_PRODUCTION", False)
DEBUG = env_bool("FAPIAO_DEBUG", False)
DEMO = env_bool("FAPIAO_DEMO", not PRODUCTION)


def _secret_key() -> str:
    """The Django secret: from the environment, else a 0600 file generated once under var/keys."""
    value = env("FAPIAO_SECRET_KEY")
    if value:
        return value
    path = KEYS_DIR / "django-secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        KEYS_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
        value = secrets.token_urlsafe(50)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        return value


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = [h.strip() for h in env("FAPIAO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")]
CSRF_TRUSTED_ORIGINS = [o for o in env("FAPIAO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # serves the API docs' assets locally: every page works offline
    "axes",  # sign-in lockout
    "csp",
    "fapiao.platform",  # unit of work, idempotency, problems: below every domain app
    "fapiao.accounts",
    "fapiao.audit",
    "fapiao.invoices",
    "fapiao.ledger",
    "fapiao.ops",
    "fapiao.catalogue",  # entry aids: address book, product catalogue, batch issuing
    "fapiao.recovery",  # recovery cases (补救申请), docs/spec/recovery.md
    "fapiao.documents",  # invoice PDF/XML, receipts for people, delivery to the buyer, public 查验
    "fapiao.web",
]

MIDDLEWARE = [
    "fapiao.platform.middleware.RequestIdMiddleware",
    "fapiao.platform.middleware.RequestMetricsMiddleware",  # fapiao_http_* and the request log line
    "fapiao.platform.input_guard.ControlCharacterGuard",  # before the session reads its cookie
    "fapiao.platform.private.NoStoreForPersonalData",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "fapiao.web.middleware.SignInThrottleMiddleware",  # 429 before a throttled client's password is hashed
    "fapiao.accounts.middleware.PasswordChangeRequiredMiddleware",
    "fapiao.accounts.middleware.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "fapiao.platform.middleware.ErrorMiddleware",  # domain errors and outages, API and pages
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the locked-out page
]

ROOT_URLCONF = "fapiao.urls"
WSGI_APPLICATION = "fapiao.wsgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "fapiao.web.context_processors.site",  # menu, demo banner, incident banner
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite is the embedded default: WAL, synchronous=FULL (a commit is on disk before we
# acknowledge), IMMEDIATE transactions (writers queue for the lock up front instead of
# failing mid-transaction) and a busy timeout.  PostgreSQL gets synchronous_commit=on.
# tests/integration/test_durability_settings.py asserts these on every connection.
SQLITE_BUSY_TIMEOUT_MS = env_int("FAPIAO_SQLITE_BUSY_TIMEOUT_MS", 5000)
DATABASE_URL = env("FAPIAO_DATABASE_URL", f"sqlite:///{VAR_DIR / 'fapiao.sqlite3'}")


def database_config(url: str) -> dict[str, Any]:
    multi_host = parse_multi_host(url)
    # A libpq multi-host URL (postgresql://h1:p1,h2:p2/db?target_session_attrs=read-write) goes to
    # libpq as it is: HOST="h1,h2", PORT="p1,p2"; dj_database_url reads every other URL.
    config: dict[str, Any] = multi_host.django_settings() if multi_host else dict(dj_database_url.parse(url))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
            "init_command": (
                "PRAGMA journal_mode=WAL;"
                "PRAGMA synchronous=FULL;"
                f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS};"
                "PRAGMA foreign_keys=ON"
            ),
        }
        config["TEST"] = (
            {"NAME": str(VAR_DIR / "test.sqlite3")} if env_bool("FAPIAO_TEST_SQLITE_FILE", False) else {}
        )
        # Reuse connections across requests: opening one re-runs the PRAGMAs above.
        config["CONN_MAX_AGE"] = env_int("FAPIAO_CONN_MAX_AGE", 60)
        config["CONN_HEALTH_CHECKS"] = True
    elif config["ENGINE"] == "django.db.backends.postgresql":
        url_options = dict(config.get("OPTIONS") or {}) if multi_host else {}
        if multi_host:
            # Several hosts: only the primary takes writes.  libpq skips a standby (or a node that
            # is being demoted) and connects to the one that accepts writes.
            url_options.setdefault("target_session_attrs", "read-write")
        libpq_options = " ".join(filter(None, [url_options.pop("options", ""), "-c synchronous_commit=on"]))
        config["OPTIONS"] = {
            **url_options,
            "options": libpq_options,
            "connect_timeout": env_int("FAPIAO_PG_CONNECT_TIMEOUT", 3),
        }
        config["CONN_MAX_AGE"] = env_int("FAPIAO_CONN_MAX_AGE", 60)
        config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASES = {"default": database_config(DATABASE_URL)}
# The URL names several PostgreSQL hosts (a pg_auto_failover cluster: docs/operations/high-availability.md).
DATABASE_MULTI_HOST = "," in str(DATABASES["default"].get("HOST", ""))
# Acknowledge a write only while the primary has a synchronous standby (pg_stat_replication), so an
# acknowledged invoice is on two machines' disks; otherwise answer 503 no_sync_standby.  On by
# default when the URL names several hosts.  A positive answer is trusted for this many ms.
FAPIAO_REQUIRE_SYNC_STANDBY = env_bool("FAPIAO_REQUIRE_SYNC_STANDBY", DATABASE_MULTI_HOST)
FAPIAO_SYNC_STANDBY_CACHE_MS = env_int("FAPIAO_SYNC_STANDBY_CACHE_MS", 1000)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Passwords: Argon2id first ------------------------------------------------------------
# Our Argon2id hasher states its parameters (at or above OWASP's minimum); a password stored with
# weaker parameters or PBKDF2 is rehashed when its owner next signs in.
PASSWORD_HASHERS = [
    "fapiao.accounts.hashers.Argon2idHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "/"

# --- Sign-in lockout (django-axes) ---------------------------------------------------------
# Counted per username, whatever the client address: FAPIAO_LOCKOUT_FAILURES wrong passwords in
# a row lock the account for FAPIAO_LOCKOUT_MINUTES (0: until an operator runs `fapiao unlock`).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("FAPIAO_LOCKOUT_FAILURES", 5)
FAPIAO_LOCKOUT_MINUTES = env_int("FAPIAO_LOCKOUT_MINUTES", 30)
AXES_COOLOFF_TIME = timedelta(minutes=FAPIAO_LOCKOUT_MINUTES) if FAPIAO_LOCKOUT_MINUTES else None
AXES_LOCKOUT_PARAMETERS = ["username"]
# axes.W006 asks for the client address as a lockout key too.  We deliberately do not: a shared
# finance centre signs in from one NAT address, and five typos among fifty clerks must not lock
# them all out.  Rotating addresses or user agents does not reset a username's counter.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
# A right password clears the failed sign-ins, except for staff whose code must follow: for them only
# the right code does (fapiao.accounts.second_factor), so code guesses cannot be reset by signing in again.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "fapiao.platform.errors.locked_out"
AXES_ENABLE_ADMIN = False  # unlocking is an audited service (`fapiao unlock`), not an admin delete
# Anonymous refusals (a 401, a failed sign-in, a form without its CSRF token) per client address
# per hour: the first N are audited one by one, the rest counted in one summary record; beyond the
# limit the client gets 429 (fapiao.audit.refusals, counted by fapiao.platform.ratelimit).
FAPIAO_ANON_REFUSALS_AUDITED = env_int("FAPIAO_ANON_REFUSALS_AUDITED", 20)
FAPIAO_ANON_REFUSALS_PER_HOUR = env_int("FAPIAO_ANON_REFUSALS_PER_HOUR", 100)
# Operators must sign in with a second factor (TOTP) outside demo mode; other staff may opt in.
FAPIAO_OPERATOR_TOTP = env_bool("FAPIAO_OPERATOR_TOTP", not DEMO)
# How long a mailed link to choose one's password (an invitation, or a reset) works; it works once.
FAPIAO_INVITATION_HOURS = env_int("FAPIAO_INVITATION_HOURS", 72)

# --- Language and time: zh-Hans first, UTC in storage, Asia/Shanghai on screen --------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"
FILE_UPLOAD_PERMISSIONS = 0o600  # Django's default, 0o644, would override the umask
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

# Bodies up to 8 MiB reach our validators, so a 10,000-line invoice or a 1 MB string gets a
# field-level error rather than a bare 400; larger bodies are refused with 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024

# --- Security headers and cookies ----------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("FAPIAO_SESSION_HOURS", 8) * 3600
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "fapiao.platform.errors.csrf_failure"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# No inline scripts or styles anywhere (the API docs page included): everything is a file of ours.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("FAPIAO_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("FAPIAO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Fapiao Vault ----------------------------------------------------------------------------
FAPIAO_PROVINCE_CODE = env("FAPIAO_PROVINCE_CODE", "11")  # Beijing
FAPIAO_IDEMPOTENCY_TTL_HOURS = env_int("FAPIAO_IDEMPOTENCY_TTL_HOURS", 72)
# How long each server process trusts an API token it has looked up (0: every request looks).
FAPIAO_TOKEN_CACHE_SECONDS = env_int("FAPIAO_TOKEN_CACHE_SECONDS", 2)
# The bulk API (POST /api/v1/invoice-batches): its own body limit (the others keep
# DATA_UPLOAD_MAX_MEMORY_SIZE) and how many batches one token may send a minute.
FAPIAO_BATCH_MAX_BYTES = env_int("FAPIAO_BATCH_MAX_BYTES", 32 * 1024 * 1024)
FAPIAO_BATCHES_PER_MINUTE = env_int("FAPIAO_BATCHES_PER_MINUTE", 60)
# Group commit: in the server, writes from concurrent requests share one transaction
# (and one fsync).  Off in tests, where each test owns its transaction.
FAPIAO_WRITE_BATCHING = env_bool("FAPIAO_WRITE_BATCHING", False)
FAPIAO_WRITE_BATCH_MAX = env_int("FAPIAO_WRITE_BATCH_MAX", 64)
FAPIAO_RETRY_AFTER_SECONDS = env_int("FAPIAO_RETRY_AFTER_SECONDS", 5)
# /readyz is degraded when no `ledger verify` over every log has passed for this many hours
# (run it daily from cron; see the runbook) while the ledger holds entries older than that.
FAPIAO_VERIFY_MAX_AGE_HOURS = env_int("FAPIAO_VERIFY_MAX_AGE_HOURS", 26)
FAPIAO_WITNESS_FILE = Path(env("FAPIAO_WITNESS_FILE", str(VAR_DIR / "witness" / "heads.jsonl")))
# Backups (docs/operations/backup.md): where they go (in production never on the database's disk),
# their AES-256 key (base64; else $FAPIAO_KEYS_DIR/backup-key, made by the first backup), and how old
# the newest verified one may be before /readyz says "overdue".
FAPIAO_BACKUP_DIR = Path(env("FAPIAO_BACKUP_DIR", str(VAR_DIR / "backups"))).resolve()
FAPIAO_BACKUP_KEY = env("FAPIAO_BACKUP_KEY") or None
FAPIAO_BACKUP_MAX_AGE_HOURS = env_int("FAPIAO_BACKUP_MAX_AGE_HOURS", 26)
# PostgreSQL backups with pgBackRest (`fapiao backup setup`): the pgbackrest command, its stanza, the
# configuration file it writes (it holds the repository cipher pass: keep it apart from the backups,
# readable by the database's OS user), the repository, how many full backups pgBackRest keeps, and
# where `backup verify` restores its scratch cluster (default: the system's temporary directory).
FAPIAO_PGBACKREST = env("FAPIAO_PGBACKREST", "pgbackrest")
FAPIAO_PGBACKREST_STANZA = env("FAPIAO_PGBACKREST_STANZA", "fapiao")
FAPIAO_PGBACKREST_CONFIG = Path(env("FAPIAO_PGBACKREST_CONFIG", "/etc/pgbackrest/fapiao.conf"))
FAPIAO_PGBACKREST_REPO = Path(env("FAPIAO_PGBACKREST_REPO", str(FAPIAO_BACKUP_DIR / "pgbackrest")))
FAPIAO_PGBACKREST_RETENTION_FULL = env_int("FAPIAO_PGBACKREST_RETENTION_FULL", 4)
FAPIAO_BACKUP_PG_SCRATCH = env("FAPIAO_BACKUP_PG_SCRATCH") or None
# Benchmarks only: measure issuance without the ledger append.  Never in production.
FAPIAO_LEDGER_ENABLED = env_bool("FAPIAO_LEDGER_ENABLED", True) or PRODUCTION
FAPIAO_SIGNING_KEY_FILE = env("FAPIAO_SIGNING_KEY_FILE") or None
# The data keys of sensitive party data: this JSON document (a mounted secret), else the key file
# $FAPIAO_KEYS_DIR/data-keys.json generated on first use (fapiao.platform.datakeys).  Never the database.
FAPIAO_DATA_KEYS = env("FAPIAO_DATA_KEYS") or None
# Behind N reverse proxies the client's address is the N-th last X-Forwarded-For entry (0: none).
FAPIAO_TRUSTED_PROXY_HOPS = env_int("FAPIAO_TRUSTED_PROXY_HOPS", 0)
# GET /metrics answers only `Authorization: Bearer <this>`; unset, /metrics is switched off (404).
FAPIAO_METRICS_TOKEN = env("FAPIAO_METRICS_TOKEN")
# How many PostgreSQL standbys should stream from the primary (the StandbyMissing alert compares).
FAPIAO_EXPECTED_STANDBYS = env_int("FAPIAO_EXPECTED_STANDBYS", 0)

# Recovery cases (docs/spec/recovery.md).  Evidence files are stored content-addressed under
# FAPIAO_EVIDENCE_DIR (behind Django's storage API, so object storage can replace it).
FAPIAO_EVIDENCE_DIR = Path(env("FAPIAO_EVIDENCE_DIR", str(VAR_DIR / "evidence"))).resolve()
FAPIAO_EVIDENCE_MAX_FILE_MB = env_int("FAPIAO_EVIDENCE_MAX_FILE_MB", 20)
FAPIAO_EVIDENCE_MAX_CASE_MB = env_int("FAPIAO_EVIDENCE_MAX_CASE_MB", 100)
# Imports (fapiao import, docs/guide/import.md): a named column mapping NAME is the file
# NAME.json in FAPIAO_IMPORT_MAPPINGS_DIR; a file larger than FAPIAO_IMPORT_MAX_FILE_MB is refused.
FAPIAO_IMPORT_MAPPINGS_DIR = Path(env("FAPIAO_IMPORT_MAPPINGS_DIR", str(VAR_DIR / "mappings"))).resolve()
FAPIAO_IMPORT_MAX_FILE_MB = env_int("FAPIAO_IMPORT_MAX_FILE_MB", 200)
# Files uploaded on the 导入发票 page, kept by SHA-256 between the preview and the import.
FAPIAO_IMPORT_UPLOADS_DIR = Path(env("FAPIAO_IMPORT_UPLOADS_DIR", str(VAR_DIR / "imports"))).resolve()
# The upload guard (fapiao.formats.safezip): every uploaded zip — an XLSX batch, an evidence file,
# an e-mail's attachment — is checked against these before anything in it is unpacked.
FAPIAO_ZIP_MAX_ENTRIES = env_int("FAPIAO_ZIP_MAX_ENTRIES", 10_000)
FAPIAO_ZIP_MAX_ENTRY_MB = env_int("FAPIAO_ZIP_MAX_ENTRY_MB", 64)
FAPIAO_ZIP_MAX_TOTAL_MB = env_int("FAPIAO_ZIP_MAX_TOTAL_MB", 128)
FAPIAO_ZIP_MAX_RATIO = env_int("FAPIAO_ZIP_MAX_RATIO", 100)
# Approving a case whose claimed total (fen) is strictly above this needs a second reviewer; -1: never.
FAPIAO_SECOND_REVIEW_ABOVE_FEN = env_int("FAPIAO_SECOND_REVIEW_ABOVE_FEN", 10_000_000)
FAPIAO_CASE_REOPEN_DAYS = env_int("FAPIAO_CASE_REOPEN_DAYS", 30)
FAPIAO_CASE_CLAIM_MINUTES = env_int("FAPIAO_CASE_CLAIM_MINUTES", 120)
# How long a case may stay in each state before it is overdue, in hours ("state=hours,…").
FAPIAO_CASE_DUE_HOURS = {
    state: int(hours)
    for state, _sep, hours in (
        item.strip().partition("=")
        for item in env(
            "FAPIAO_CASE_DUE_HOURS",
            "submitted=24,in_review=72,needs_info=168,awaiting_second=48,approved=24",
        ).split(",")
        if item.strip()
    )
}
FAPIAO_PUBLIC_URL = env("FAPIAO_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
PUBLIC_URL_GIVEN = bool(env("FAPIAO_PUBLIC_URL", ""))  # production warns at start without it
FAPIAO_MAIL_FROM = env("FAPIAO_MAIL_FROM", "fapiao-vault@localhost")
# The support desk as pages show it wherever they say 联系客服 (docs/operations/settings.md).
FAPIAO_SUPPORT_PHONE = env("FAPIAO_SUPPORT_PHONE", "")
FAPIAO_SUPPORT_EMAIL = env("FAPIAO_SUPPORT_EMAIL", "")
FAPIAO_SUPPORT_HOURS = env("FAPIAO_SUPPORT_HOURS", "")
DEFAULT_FROM_EMAIL = FAPIAO_MAIL_FROM
# Without an SMTP host, mail is written as files under var/mail (the demo reads them there).
EMAIL_HOST = env("FAPIAO_SMTP_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("FAPIAO_SMTP_PORT", 587)
    EMAIL_HOST_USER = env("FAPIAO_SMTP_USER", "")
    EMAIL_HOST_PASSWORD = env("FAPIAO_SMTP_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("FAPIAO_SMTP_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
# Sending invoices to buyers (fapiao.documents.deliveries): how long one SMTP conversation may take,
# and the retries of `fapiao deliveries retry` (RETRY_MINUTES × 2^(attempt − 1) apart).
FAPIAO_SMTP_TIMEOUT_SECONDS = env_int("FAPIAO_SMTP_TIMEOUT_SECONDS", 20)
FAPIAO_DELIVERY_RETRY_MINUTES = env_int("FAPIAO_DELIVERY_RETRY_MINUTES", 5)
FAPIAO_DELIVERY_MAX_ATTEMPTS = env_int("FAPIAO_DELIVERY_MAX_ATTEMPTS", 6)
# The public 查验 (/check/, /api/v1/check): checks per client address and per invoice number.
FAPIAO_CHECK_WINDOW_SECONDS = env_int("FAPIAO_CHECK_WINDOW_SECONDS", 3600)
FAPIAO_CHECK_LIMIT_PER_ADDRESS = env_int("FAPIAO_CHECK_LIMIT_PER_ADDRESS", 60)
FAPIAO_CHECK_LIMIT_PER_NUMBER = env_int("FAPIAO_CHECK_LIMIT_PER_NUMBER", 20)
FAPIAO_DEMO_PASSWORD_DEFAULT = "fapiao-demo-2026"  # noqa: S105  demo users only, printed on start

NINJA_PAGINATION_PER_PAGE = 50

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {"()": "fapiao.platform.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "structured"},
    },
    "root": {"handlers": ["console"], "level": env("FAPIAO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "axes": {"level": "WARNING"},  # failed sign-ins and lockouts, not its start-up banner
    },
}
