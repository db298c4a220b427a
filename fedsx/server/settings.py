"""Settings of the standalone node, read from the environment.

Embedded default (no environment at all): a SQLite file under ``data/``, Celery tasks run
in process after commit, DEBUG on and a generated secret key kept in ``data/secret_key``.
``DATABASE_URL`` and ``CELERY_BROKER_URL`` switch to real services.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(os.environ.get("FEDSX_DATA_DIR", BASE_DIR / "data"))


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DATABASE_URL = os.environ.get("DATABASE_URL", "")
EMBEDDED = not DATABASE_URL
DEBUG = _env_flag("DEBUG", default=EMBEDDED)


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
            "(fedsx refuses to start with DEBUG off and no key)."
        )
    # Embedded/dev mode: generate once and keep it, so sessions survive a restart.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "*").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # The operator API (fedsx.api): tokens, filters, its OpenAPI schema and offline docs.
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "fedsx",
    "flows",
    "triggers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "fedsx.server.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The top-level templates/ is found as fedsx/templates (a link), the way a host
        # project finds it in an installed package.
        "DIRS": [],
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

WSGI_APPLICATION = "fedsx.server.wsgi.application"
ASGI_APPLICATION = "fedsx.server.asgi.application"

if EMBEDDED:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "fedsx.sqlite3",
            # A web request and an in-process task may write at once: wait, don't fail.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
else:
    # Persistent connections: a new connection per request made the inbox 4x slower. No
    # health check by default (it is a query per request and per task): a connection that
    # broke fails one request, answered 503 so the sender retries, or one task, which
    # Celery retries; Django then opens a new one.
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=int(os.environ.get("CONN_MAX_AGE", "600")),
            conn_health_checks=_env_flag("CONN_HEALTH_CHECKS", default=False),
        )
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

REST_FRAMEWORK = {
    # The federation endpoints are public; the operator API opts into auth per view.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": [
        "fedsx.renderers.ActivityJSONRenderer",
        "fedsx.renderers.LDJSONRenderer",
        "rest_framework.renderers.JSONRenderer",
    ],
    "EXCEPTION_HANDLER": "fedsx.errors.exception_handler",
    # drf-spectacular's, as it requires (the API's views refine it: fedsx.api.schema).
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "fedsx.parsers.ActivityJSONParser",
        "fedsx.parsers.LDJSONParser",
        "rest_framework.parsers.JSONParser",
    ],
}

# Celery: a real broker when CELERY_BROKER_URL is set, otherwise tasks run in process.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if CELERY_BROKER_URL.startswith("redis://"):
    # kombu's Redis transport, reusing its publish client (fedsx/broker.py says why).
    CELERY_BROKER_TRANSPORT = "fedsx.broker:Transport"
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The sweepers: re-enqueue inbox entries whose triggers were not applied in time, and hand
# out deliveries whose retry fell due (at FEDSX DELIVERY_SWEEP_SECONDS' default).
CELERY_BEAT_SCHEDULE = {
    "triggers-sweep": {"task": "fedsx.sweep", "schedule": 30.0, "args": ("triggers",)},
    "deliveries-sweep": {"task": "fedsx.sweep", "schedule": 2.0, "args": ("deliveries",)},
    "flows-wake": {"task": "fedsx.sweep", "schedule": 1.0, "args": ("wakeups",)},
}
# Keep worker database connections between tasks (Celery's Django fixup closes them after
# every task otherwise); the tasks call close_old_connections() first, so a broken or aged
# connection is still replaced.
CELERY_DB_REUSE_MAX = 1000

# Metrics (fedsx/metrics, README "Metrics"): a served node's processes (gunicorn and Celery
# workers) write them to one directory that /metrics adds up; the embedded node (one
# process) keeps them in memory, as does PROMETHEUS_MULTIPROC_DIR="". Settled here because
# prometheus_client reads the variable once, when first imported, before any app loads.
METRICS_DIR = os.environ.get(
    "PROMETHEUS_MULTIPROC_DIR", "" if EMBEDDED else str(DATA_DIR / "metrics")
)
if METRICS_DIR:
    Path(METRICS_DIR).mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR
else:
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

# Plugin settings; every key is optional (defaults and their meaning: fedsx/conf.py, README).
# FEDSX_BASE_URL and FEDSX_FETCH_ALLOWLIST in the environment feed the defaults.
FEDSX: dict = {}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "fedsx": {"handlers": ["console"], "level": os.environ.get("FEDSX_LOG_LEVEL", "INFO")},
        "triggers": {"handlers": ["console"], "level": os.environ.get("FEDSX_LOG_LEVEL", "INFO")},
        "flows": {"handlers": ["console"], "level": os.environ.get("FEDSX_LOG_LEVEL", "INFO")},
    },
}
