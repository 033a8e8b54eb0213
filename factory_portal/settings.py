"""Factory Portal settings: one module, every deployment difference comes from the environment.

Variables (all optional unless noted):
  DATABASE_URL        PostgreSQL URL (default postgres://postgres@127.0.0.1:5432/factory_portal)
  REDIS_URL           Redis URL, the Celery broker and result store (default redis://127.0.0.1:6379/0)
  CELERY_BROKER_URL   overrides the broker; ``filesystem://`` needs no server (embedded demo)
  CELERY_BROKER_DIR   folder of the filesystem broker
  SECRET_KEY          required when DEBUG is off
  DEBUG               1/0 (default 0: production-safe)
  PORTAL_BASE_DOMAIN  operator console host; tenant ``acme`` is ``acme.<base>`` (default localhost)
  PORTAL_SECURE       1/0: HTTPS-only cookies, HSTS and redirect (default: on when DEBUG is off)
  PORTAL_BEHIND_TLS_PROXY  1: trust the proxy's X-Forwarded-Proto and X-Forwarded-For
  LOGIN_FAILURE_LIMIT, LOGIN_LOCKOUT_MINUTES  failed logins per account and per address (10)
                      before logins are refused for that many minutes (15)
  EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS,
  DEFAULT_FROM_EMAIL
  LOG_LEVEL, LOG_FORMAT  log level (INFO) and ``json`` (default) or ``plain`` lines on stderr
  METRICS_TOKEN       bearer token that /metrics requires; unset: METRICS_ALLOWED_NETWORKS decides
  METRICS_ALLOWED_NETWORKS  comma-separated networks that may scrape /metrics without the token
                      (unset: loopback with DEBUG on, none with DEBUG off)
  METRICS_MODEL_LABELS_MAX  distinct model labels per tenant and process (default 50), then "other"
  PROMETHEUS_MULTIPROC_DIR  folder shared by a host's processes for multi-process metrics
  STATIC_MANIFEST     1: hashed, pre-compressed static files from ``collectstatic`` (production)
  OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_* variables: opt-in tracing (see README)
  PLATFORM_MAX_TENANTS_PER_REQUEST  tenants one platform-key request may write (default 50;
                      the others' items are refused with the reason)
  OTLP_MAX_SPANS_PER_REQUEST  spans one POST /v1/traces may carry (default 10000; more: 413)
  OTLP_MAX_PARKED_SPANS       spans waiting for their run span, per sender (default 100000)
  OTLP_PARKED_SPAN_TTL_SECONDS  how long such a span waits before it is deleted (default 86400)
  OTLP_MAX_LOG_RECORDS_PER_REQUEST  log records one POST /v1/logs may carry (default 10000)
  RUN_LOG_MAX_PER_RUN         log records kept per run (default 2000; ERROR/CRITICAL beyond it)
  OTLP_MAX_METRIC_POINTS_PER_REQUEST  data points one POST /v1/metrics may carry (10000; more: 413)
  METRICS_RAW_RETENTION_DAYS, METRICS_MINUTE_RETENTION_DAYS, METRICS_HOUR_RETENTION_DAYS  how long
                      raw metric points (7), minute rollups (14) and hour rollups (400) are kept
  METRICS_RETENTION_EVERY_S, METRICS_RETENTION_CHUNK  how often the beat deletes older metric rows
                      (3600) and how many rows one DELETE takes at most (50000)
  PAGERDUTY_EVENTS_URL  where PagerDuty routes send events (default the Events API v2,
                      https://events.pagerduty.com/v2/enqueue; tests point it at a local receiver)
  HEALTH_*            runtime health thresholds and which services make up each indicator (see
                      the settings' "Runtime health" block and README "Health and queues")
  ONCALL_EVALUATE_EVERY_S  how often the beat evaluates the runtime alert rules (default 30)
  ONCALL_CLEAR_FOR_S  how long a firing rule's condition must stay clear before it resolves (120)
  ONCALL_MIN_RUNS, ONCALL_MIN_JOBS  finished runs (5) and jobs (10) a window needs before the run
                      failure rate and the worker error rate are judged
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from factory_portal.observability.log_config import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def package_dir(name: str) -> Path:
    """The folder an installed package lives in (found without importing it)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ImproperlyConfigured(f"The package {name!r} is not installed.")
    return Path(spec.origin).parent


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-key-for-local-debug-only"  # noqa: S105 - only ever used with DEBUG=1

PORTAL_BASE_DOMAIN = os.environ.get("PORTAL_BASE_DOMAIN", "localhost").strip().lower()
ALLOWED_HOSTS = [PORTAL_BASE_DOMAIN, f".{PORTAL_BASE_DOMAIN}"]
ALLOWED_HOSTS += [h for h in os.environ.get("ALLOWED_HOSTS_EXTRA", "").split(",") if h]

# --- Applications -----------------------------------------------------------------------------
# Shared apps live in the public schema (tenants, operators, the price book); tenant apps get one
# copy per tenant schema. auth/sessions/accounts are in both: operators are users of the public
# schema, customers are users of their own tenant's schema.
SHARED_APPS = [
    "django_tenants",
    "factory_portal.observability",
    "factory_portal.tenants",
    "factory_portal.accounts",
    "billing.operator",
    "usage.trace_routing",
    "runtime",  # also a tenant app: platform-wide series here, a tenant's in its schema
    "alerts.oncall",  # also a tenant app: the operator's rules and routes here, a tenant's there
    "web",  # no models: the seed_demo command (the web layer, see the README's architecture)
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    # Failed-login counting; with the cache handler its tables stay empty (public schema only).
    "axes",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "factory_portal.accounts",
    "usage",
    "billing",
    "notifications",
    "alerts",
    "runtime",
    "alerts.oncall",
    "saved",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
# Set the search path once per schema switch, not before every query (half the round trips).
TENANT_LIMIT_SET_CALLS = True
TENANT_DOMAIN_MODEL = "tenants.Domain"
# New tenant schemas are cloned from this template, migrated to head and made again when the
# migrations change (factory_portal/tenants/schema_clone.py); 0 migrates each new schema.
TENANT_TEMPLATE_SCHEMA = "_tenant_template"
TENANT_CLONE_TEMPLATE = env_bool("TENANT_CLONE_TEMPLATE", True)
# migrate_schemas over every tenant: "standard" (one process) or "multiprocessing" (forked
# processes, TENANT_MULTIPROCESSING_MAX_PROCESSES of them, each taking whole schemas).
TENANT_MIGRATION_EXECUTOR = os.environ.get("MIGRATION_EXECUTOR", "standard")
TENANT_MULTIPROCESSING_MAX_PROCESSES = env_int("MIGRATION_PROCESSES", os.cpu_count() or 2)
TENANT_MULTIPROCESSING_CHUNKS = env_int("MIGRATION_CHUNKS", 4)
# Leave out the tenant schemas that already have every migration (migrate to head only).
TENANT_MIGRATE_SKIP_CURRENT = env_bool("MIGRATE_SKIP_CURRENT", True)
GET_EXECUTOR_FUNCTION = "factory_portal.tenants.migration_executor.get_executor"
PUBLIC_SCHEMA_NAME = "public"
ROOT_URLCONF = "web.urls_tenants"
PUBLIC_SCHEMA_URLCONF = "web.urls_public"

MIDDLEWARE = [
    # Request id, log context, access log, HTTP metrics; answers /metrics.
    "factory_portal.observability.middleware.RequestObservabilityMiddleware",
    "factory_portal.health.HealthCheckMiddleware",
    # Content-Security-Policy and Permissions-Policy on every answer (see Security below),
    # outside the tenant lookup so that its error pages (503: no database) carry them too.
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "factory_portal.errors.ApiProblemMiddleware",  # problem+json for every API error answer
    "factory_portal.tenants.middleware.TenantHostMiddleware",  # django-tenants', one query
    # Page and read-API requests may read from a replica (after the tenant is known).
    "factory_portal.db_routing.ReplicaReadsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # ETag on every GET answer and 304 for a matching If-None-Match.
    "django.middleware.http.ConditionalGetMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "factory_portal.tenants.middleware.TenantStatusMiddleware",
    # Turns a login refused for too many failures into the 429 lock-out page.
    "axes.middleware.AxesMiddleware",
]

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
                "web.context_processors.portal",
            ],
            "libraries": {"portal": "web.templatetags.portal"},
        },
    },
]

WSGI_APPLICATION = "factory_portal.wsgi.application"
ASGI_APPLICATION = "factory_portal.asgi.application"

# --- Database ---------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/factory_portal")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
    )
}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
# No JIT compilation: dashboard and API queries are short, and PostgreSQL's JIT (triggered by
# cost estimates, not by real work) added ~30 ms to queries that run in a few milliseconds.
DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
# Hot statements (ingest) prepared on the server: factory_portal.pg.prepared_cursor. Off for a
# connection pooler that does not keep prepared statements per client.
DB_PREPARE = env_bool("DB_PREPARE", True)
# psycopg prepares a statement of a server-binding cursor at its first execution (Django's own
# cursors bind on the client and never prepare; Django's default, None, turns preparing off).
DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 0 if DB_PREPARE else None
DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ.get("TEST_DATABASE_NAME") or None
# Read replicas (README, "Read replicas"): each URL of DATABASE_REPLICA_URLS becomes replica_<n>,
# with the primary's engine (django-tenants' search_path) and options. Pages and the read API read
# from a healthy replica; writes, transactions, tasks and migrations stay on the primary.
DATABASE_REPLICA_URLS = [
    url.strip() for url in os.environ.get("DATABASE_REPLICA_URLS", "").split(",") if url.strip()
]
for _index, _url in enumerate(DATABASE_REPLICA_URLS):
    _where = dj_database_url.parse(_url)
    _replica = dict(DATABASES["default"])  # engine, options, pooling as the primary's
    _replica.update({key: _where[key] for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")})  # type: ignore[literal-required]
    _replica["OPTIONS"] = {
        "connect_timeout": env_int("REPLICA_CONNECT_TIMEOUT_S", 2),
        **DATABASES["default"]["OPTIONS"],
    }
    _replica["TEST"] = {"MIRROR": "default"}  # tests read the primary's test database
    DATABASES[f"replica_{_index}"] = _replica  # type: ignore[assignment]
REPLICA_MAX_LAG_S = float(os.environ.get("REPLICA_MAX_LAG_S") or 5)
REPLICA_READ_YOUR_WRITES_S = env_int("REPLICA_READ_YOUR_WRITES_S", 10)
REPLICA_HEALTH_CHECK_S = float(os.environ.get("REPLICA_HEALTH_CHECK_S") or 2)
DATABASE_ROUTERS = (
    "factory_portal.db_routing.ReplicaRouter",
    "django_tenants.routers.TenantSyncRouter",
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ---------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Sign-in limits (django-axes, factory_portal/accounts/lockout.py): failed logins are counted per
# account (schema and e-mail) and per client address in the shared cache; at the limit, logins
# are refused for the lock-out time, which every further failure starts again.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15)
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "factory_portal.accounts.lockout.FailOpenCacheHandler"
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # two counters, each with the limit
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "factory_portal.accounts.lockout.account_key"
AXES_CLIENT_IP_CALLABLE = "factory_portal.client.client_address"
AXES_CLIENT_STR_CALLABLE = "factory_portal.accounts.lockout.client_description"
AXES_LOCKOUT_CALLABLE = "factory_portal.accounts.views.login_locked_out"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Internationalisation -----------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -------------------------------------------------------------------------------
STATIC_URL = "/static/"
# plotly.js is served from the installed plotly package (no CDN, nothing vendored in the repo).
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/plotly", package_dir("plotly") / "package_data"),
]
# Production (STATIC_MANIFEST=1, after collectstatic into STATIC_ROOT): content-hashed names
# cached for a year, served gzip- or brotli-compressed by whitenoise. Otherwise files are served
# from where they lie (the apps' and the project's static folders).
STATIC_MANIFEST = env_bool("STATIC_MANIFEST", False)
STATIC_ROOT = (
    Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
    if STATIC_MANIFEST or os.environ.get("STATIC_ROOT")
    else None
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST

# --- Security -------------------------------------------------------------------------------------
PORTAL_SECURE = env_bool("PORTAL_SECURE", not DEBUG)
SESSION_COOKIE_SECURE = PORTAL_SECURE
CSRF_COOKIE_SECURE = PORTAL_SECURE
SECURE_SSL_REDIRECT = PORTAL_SECURE
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if PORTAL_SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PORTAL_SECURE
SECURE_HSTS_PRELOAD = PORTAL_SECURE
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
PORTAL_BEHIND_TLS_PROXY = env_bool("PORTAL_BEHIND_TLS_PROXY", False)
if PORTAL_BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Also sent by SecurityMiddleware (these are Django's defaults, written down to be explicit):
# X-Content-Type-Options: nosniff, Referrer-Policy and Cross-Origin-Opener-Policy.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Scripts only from this site's own files: no inline script, no eval (plotly.js and Swagger UI
# are served locally). Inline styles are allowed because plotly.js writes its styles into
# <style> elements and style attributes, and the Swagger UI page carries a <style> block.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        # plotly's "download as PNG" and Swagger UI's icons are data: and blob: images.
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Browser features no page uses are switched off for the page and anything it might embed.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
}

# Large ingest batches (10,000 events) exceed Django's 2.5 MB default; the API enforces its own
# per-endpoint limits with a clear 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 32 * 1024 * 1024)

# --- E-mail ---------------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get(
    "DEFAULT_FROM_EMAIL", f"Factory Portal <noreply@{PORTAL_BASE_DOMAIN}>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery -------------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(os.environ.get("CELERY_BROKER_DIR", BASE_DIR / ".demo" / "broker"))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = None
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 3600,
        # A publish to a broker that is down fails within a second instead of retrying the
        # connection for several (requests only publish work that an outbox or beat backs up).
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
        "socket_connect_timeout": 2,
    }
    CELERY_BROKER_CONNECTION_TIMEOUT = 2
    CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL)
# Webhooks to private or loopback addresses are refused unless the operator allows them.
ALERTS_WEBHOOK_ALLOW_PRIVATE = env_bool("ALERTS_WEBHOOK_ALLOW_PRIVATE", False)
# PagerDuty routes post their events here (through the same address check as webhooks).
PAGERDUTY_EVENTS_URL = (
    os.environ.get("PAGERDUTY_EVENTS_URL", "").strip() or "https://events.pagerduty.com/v2/enqueue"
)

# Cache (cost summaries): Redis when it is the broker, else this process's memory.
if CELERY_BROKER_URL.startswith("redis"):
    CACHES = {
        "default": {
            "BACKEND": "factory_portal.cache.SharedClientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "portal",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
        }
    }
else:
    # Without Redis each process counts failed logins on its own (the demo runs one process).
    SILENCED_SYSTEM_CHECKS = ["axes.W001"]
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Worker logs go through the portal's JSON logging, not Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
ONCALL_EVALUATE_EVERY_S = env_int("ONCALL_EVALUATE_EVERY_S", 30)  # the runtime alert rules
# The beat's per-tenant fan-outs (factory_portal.tenants.fanout), one entry each: the beat task,
# its interval, and which tenants: "active" skips tenants idle for TENANT_IDLE_AFTER_DAYS, "all"
# never skips (retention, month close, outboxes, alert rules that watch for silence, e-mails).
# A new fan-out is one entry here; its beat schedule follows.
_FAN_OUT_TASKS: list[dict[str, Any]] = [
    {"name": "usage-freshness-refresh", "task": "usage.tasks.tenants_freshness_refresh",
     "every": 300.0, "tenants": "active"},
    {"name": "forecasts-refresh", "task": "billing.tasks.forecasts_refresh_all",
     "every": 6 * 3600.0, "tenants": "active"},
    {"name": "alerts-evaluate", "task": "alerts.tasks.alerts_evaluate_all",
     "every": float(env_int("ALERTS_EVALUATE_EVERY_S", 300)), "tenants": "all"},
    {"name": "runs-pending-flush", "task": "alerts.tasks.runs_pending_flush_all",
     "every": float(env_int("ALERTS_OUTBOX_EVERY_S", 60)), "tenants": "active"},
    {"name": "run-digests", "task": "alerts.tasks.run_digests_all",
     "every": 3600.0, "tenants": "active"},
    {"name": "deliveries-flush", "task": "alerts.tasks.deliveries_flush_all",
     "every": float(env_int("ALERTS_OUTBOX_EVERY_S", 60)), "tenants": "all"},
    {"name": "oncall-pages-flush", "task": "alerts.oncall.tasks.pages_flush_all",
     "every": float(env_int("ALERTS_OUTBOX_EVERY_S", 60)), "tenants": "all"},
    # The run guard's sweep: runs whose usage arrived while the broker was down, finished runs.
    {"name": "run-guards-refresh", "task": "billing.tasks.run_guards_refresh_all",
     "every": 60.0, "tenants": "active"},
    {"name": "cost-summaries-refresh", "task": "billing.tasks.cost_summaries_refresh_all",
     "every": 300.0, "tenants": "active"},
    # Raw event partitions: months ahead created, months past each tenant's retention dropped.
    {"name": "partitions-maintain", "task": "usage.tasks.partitions_maintain_all",
     "every": float(env_int("PARTITIONS_MAINTAIN_EVERY_S", 24 * 3600)), "tenants": "all"},
    # Striped rollup rows of past days folded into one row per key (usage.services.stripes).
    {"name": "rollup-stripes-fold", "task": "usage.tasks.rollup_stripes_fold_all",
     "every": float(env_int("ROLLUP_STRIPES_FOLD_EVERY_S", 24 * 3600)), "tenants": "active"},
    {"name": "metrics-retention", "task": "runtime.tasks.metrics_retention_all",
     "every": float(env_int("METRICS_RETENTION_EVERY_S", 3600)), "tenants": "all"},
    {"name": "oncall-evaluate", "task": "alerts.oncall.tasks.oncall_evaluate_all",
     "every": float(ONCALL_EVALUATE_EVERY_S), "tenants": "all"},
    # Makes the due e-mails of saved views and the monthly report, and sends (retries) them.
    {"name": "scheduled-emails", "task": "saved.tasks.scheduled_emails_all",
     "every": float(env_int("SCHEDULED_EMAILS_EVERY_S", 300)), "tenants": "all"},
]  # fmt: skip
# Days before yesterday whose striped rollup rows the daily fold reads (usage.services.stripes).
ROLLUP_STRIPES_FOLD_DAYS = env_int("ROLLUP_STRIPES_FOLD_DAYS", 7)
TENANT_FAN_OUT_CHUNK = env_int("TENANT_FAN_OUT_CHUNK", 200)  # tenants per chunk task
TENANT_IDLE_AFTER_DAYS = env_int("TENANT_IDLE_AFTER_DAYS", 7)  # no data since: skipped
CELERY_BEAT_SCHEDULE = {
    "pending-spans-expire": {
        "task": "usage.tasks.pending_spans_expire",
        "schedule": 600.0,
    },
    **{f["name"]: {"task": f["task"], "schedule": f["every"]} for f in _FAN_OUT_TASKS},
}

# --- REST framework -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "factory_portal.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every API view declares ``access`` (area for signed-in users, scope for keys); see
    # factory_portal/accounts/authentication.py. A view without it refuses everyone.
    "DEFAULT_PERMISSION_CLASSES": ["factory_portal.accounts.authentication.DeclaredAccess"],
    "DEFAULT_RENDERER_CLASSES": ["factory_portal.api.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "factory_portal.pagination.CursorPage",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "factory_portal.api.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["factory_portal.api.ApiKeyRateThrottle"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# Requests per key (or user) and minute, by kind of endpoint; over it: 429 with Retry-After.
API_RATES = {
    "read": os.environ.get("API_RATE_READ", "600/min"),
    "ingest": os.environ.get("API_RATE_INGEST", "6000/min"),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Factory Portal API",
    "DESCRIPTION": "Usage, costs, runs, forecasts, budgets and notifications of one tenant "
    "(the host names the tenant). Authenticate with `Authorization: Bearer <API key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # GET /api/v1/status names the runtime health statuses twice (overall, each indicator):
    # one schema enum (the values of runtime.domain.health.Status; the kernel imports no app).
    "ENUM_NAME_OVERRIDES": {
        "HealthStatusEnum": ["ok", "degraded", "down", "unknown"],
        # A run budget's limit basis (its "basis" and a run guard's "limit_basis").
        "RunBudgetBasisEnum": ["amount", "p90_multiple"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "factory_portal.api.problem_responses_hook",
    ],
}

# --- Billed vs estimated (AI providers' bills) ---------------------------------------------------
# A provider and model is outside tolerance when its month's bill differs from the portal's
# estimate by more than this percentage of the estimate (an operator alert is raised).
BILLED_DRIFT_TOLERANCE_PERCENT = Decimal(os.environ.get("BILLED_DRIFT_TOLERANCE_PERCENT") or "2")
# The largest bill file accepted (a JSON answer is read whole; a CSV is streamed).
BILLED_IMPORT_MAX_BYTES = env_int("BILLED_IMPORT_MAX_BYTES", 50 * 1024 * 1024)

# --- Usage ingestion ----------------------------------------------------------------------------
# usage prices calls through this (billing implements it; usage never imports billing).
USAGE_PRICER = "billing.pricing.pricer.tenant_pricer"
INGEST_MAX_EVENTS = 10_000
INGEST_MAX_BODY_BYTES = env_int("INGEST_MAX_BODY_BYTES", 16 * 1024 * 1024)
# JSON values one ingest body may decode into (counted from its punctuation before decoding):
# bounds the decoder's memory to ~200 MiB at worst; a 10,000-event batch holds about 220,000.
INGEST_MAX_JSON_VALUES = env_int("INGEST_MAX_JSON_VALUES", 2_000_000)
INGEST_MAX_FUTURE_SECONDS = 300  # clock skew tolerated for event timestamps
# Monthly partitions of the raw event tables created ahead of the current month.
PARTITIONS_AHEAD_MONTHS = env_int("PARTITIONS_AHEAD_MONTHS", 2)
# Valid JSON event batches decoded and checked by msgspec's compiled decoder (usage.domain.
# events_fast); any problem falls back to the general path and its per-item error report.
INGEST_FAST_DECODE = env_bool("INGEST_FAST_DECODE", True)
# OTLP: the same per-request bound as REST events (above the collector's default batch of 8,192
# and the SDK's 512); spans waiting for their run span, per sender (tenant key or the platform
# key), and how long they wait before the beat sweeper deletes them (a run span more than a day
# after its children was lost).
# How many tenants one platform-key request may write (their items share one transaction).
PLATFORM_MAX_TENANTS_PER_REQUEST = env_int("PLATFORM_MAX_TENANTS_PER_REQUEST", 50)
OTLP_MAX_SPANS_PER_REQUEST = env_int("OTLP_MAX_SPANS_PER_REQUEST", 10_000)
OTLP_MAX_PARKED_SPANS = env_int("OTLP_MAX_PARKED_SPANS", 100_000)
OTLP_PARKED_SPAN_TTL_SECONDS = env_int("OTLP_PARKED_SPAN_TTL_SECONDS", 24 * 3600)
# OTLP logs: records per request (the SDK's batch is 512), and per run: beyond
# RUN_LOG_MAX_PER_RUN only ERROR and CRITICAL records are kept, up to twice as many in all.
OTLP_MAX_LOG_RECORDS_PER_REQUEST = env_int("OTLP_MAX_LOG_RECORDS_PER_REQUEST", 10_000)
RUN_LOG_MAX_PER_RUN = env_int("RUN_LOG_MAX_PER_RUN", 2_000)
# OTLP metrics (runtime): data points per request, and how long raw points, minute and hour
# rollups are kept (the beat's runtime.tasks.metrics_retention deletes older rows in chunks).
OTLP_MAX_METRIC_POINTS_PER_REQUEST = env_int("OTLP_MAX_METRIC_POINTS_PER_REQUEST", 10_000)
METRICS_RAW_RETENTION_DAYS = env_int("METRICS_RAW_RETENTION_DAYS", 7)
METRICS_MINUTE_RETENTION_DAYS = env_int("METRICS_MINUTE_RETENTION_DAYS", 14)
METRICS_HOUR_RETENTION_DAYS = env_int("METRICS_HOUR_RETENTION_DAYS", 400)
METRICS_RETENTION_CHUNK = env_int("METRICS_RETENTION_CHUNK", 50_000)
# Link from a run to its trace, e.g. "https://tempo.example/explore?traceId={trace_id}".
PORTAL_TRACE_URL_TEMPLATE = os.environ.get("PORTAL_TRACE_URL_TEMPLATE", "")

# --- Logging and metrics ------------------------------------------------------------------------
LOGGING = logging_config(
    level=os.environ.get("LOG_LEVEL", "INFO"), fmt=os.environ.get("LOG_FORMAT", "json")
)
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# Unset: loopback in development only. In production a reverse proxy on the same host would make
# every visitor a loopback client, so /metrics needs the token or networks named on purpose.
METRICS_ALLOWED_NETWORKS = [
    ipaddress.ip_network(n.strip(), strict=False)
    for n in os.environ.get(
        "METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128" if DEBUG else ""
    ).split(",")
    if n.strip()
]
# Distinct model names per tenant and process in tokens_used_total / cost_ai_total; more: "other".
METRICS_MODEL_LABELS_MAX = env_int("METRICS_MODEL_LABELS_MAX", 50)

# --- Runtime health (README "Health and queues") ------------------------------------------------
# A part of the factory is degraded when silent for HEALTH_STALE_AFTER_S, down after
# HEALTH_DOWN_AFTER_S; error rates (errors per job over the last HEALTH_ERROR_WINDOW_S) and a
# queue's estimated wait (depth / processing rate) have a degraded and a down threshold.
HEALTH_STALE_AFTER_S = env_int("HEALTH_STALE_AFTER_S", 120)
HEALTH_DOWN_AFTER_S = env_int("HEALTH_DOWN_AFTER_S", 600)
HEALTH_ERROR_WINDOW_S = env_int("HEALTH_ERROR_WINDOW_S", 300)
HEALTH_ERROR_RATE_DEGRADED = float(os.environ.get("HEALTH_ERROR_RATE_DEGRADED") or 0.05)
HEALTH_ERROR_RATE_DOWN = float(os.environ.get("HEALTH_ERROR_RATE_DOWN") or 0.5)
HEALTH_QUEUE_WAIT_DEGRADED_S = env_int("HEALTH_QUEUE_WAIT_DEGRADED_S", 300)
HEALTH_QUEUE_WAIT_DOWN_S = env_int("HEALTH_QUEUE_WAIT_DOWN_S", 1800)
# Which reporting services (their OTel service.name, shell patterns) make up each indicator.
HEALTH_SERVICES = {
    "control_plane": os.environ.get(
        "HEALTH_CONTROL_PLANE_SERVICES", "*control*,*orchestrator*,*scheduler*,*api*"
    ).split(","),
    "data_plane": os.environ.get("HEALTH_DATA_PLANE_SERVICES", "*worker*,*runner*").split(","),
    "queues": os.environ.get("HEALTH_QUEUE_SERVICES", "*queue*,*broker*").split(","),
    "database": os.environ.get(
        "HEALTH_DATABASE_SERVICES", "*database*,*postgres*,*db*,*sql*"
    ).split(","),
}
# worker_errors_total error_type values that count against the database indicator.
HEALTH_DATABASE_ERROR_TYPES = os.environ.get(
    "HEALTH_DATABASE_ERROR_TYPES", "*database*,*db*,*sql*"
).split(",")

# --- Runtime alert rules (README "Runtime rules") -----------------------------------------------
# A firing incident resolves once its condition has stayed clear this long (hysteresis: a
# condition flapping faster neither resolves nor fires again). Rates need enough finished runs
# and jobs in the window to mean something.
ONCALL_CLEAR_FOR_S = env_int("ONCALL_CLEAR_FOR_S", 120)
ONCALL_MIN_RUNS = env_int("ONCALL_MIN_RUNS", 5)
ONCALL_MIN_JOBS = env_int("ONCALL_MIN_JOBS", 10)
