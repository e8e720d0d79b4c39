"""Site settings, read from the environment (and a `.env` file) through django-environ."""

from __future__ import annotations

import os
from pathlib import Path

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from connections.conf import DEFAULTS, from_environment
from connections.logging import console_config

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = BASE_DIR / ".run"

env = environ.Env()
# Values already in the environment win over the file, so CI and tests can override it.
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="insecure-local-only-secret-key-set-SECRET_KEY-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

PUBLIC_URL = env("PUBLIC_URL", default=DEFAULTS["PUBLIC_URL"]).rstrip("/")
WORKER_MODULES = env.list("WORKER_MODULES", default=DEFAULTS["WORKER_MODULES"])
SANDBOX_PROVIDER = env.bool("SANDBOX_PROVIDER", default=DEFAULTS["SANDBOX_PROVIDER"])

_keys = [k.strip() for k in env.list("FIELD_ENCRYPTION_KEY", default=[]) if k.strip()]
if not _keys:
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEY is not set. Run `make run` once (it writes one into .env) "
        "or set it in the environment (python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())')."
    )
# The first key encrypts; every key decrypts (MultiFernet), which is what rotation needs.
FIELD_ENCRYPTION_KEY = _keys

INSTALLED_APPS = [
    "connections.apps.WorkersAdminConfig",  # django.contrib.admin, with the overview as its index
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "oauth2_provider",
    "connections",
    "sandbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Right after SecurityMiddleware, as WhiteNoise asks: the admin's CSS and JS in every mode.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "workers_site.urls"
WSGI_APPLICATION = "workers_site.wsgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # BEGIN IMMEDIATE takes the write lock when a transaction starts, so two transactions
        # that read then write wait for each other instead of failing with "database is locked".
        "transaction_mode": "IMMEDIATE",
        "timeout": 60,
        # WAL lets the web server, Celery workers and beat read while one of them writes.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests share the database with real Celery worker processes, so it must be a file.
    DATABASES["default"]["TEST"] = {
        "NAME": env("TEST_SQLITE_PATH", default=str(RUN_DIR / "test-db.sqlite3")),
    }
else:
    # The web server's: 0, since its ASGI worker gives each request a thread of its own, and a kept
    # connection would outlive it (Django ticket #33497). Celery's pool processes keep theirs:
    # CELERY_WORKER_CONN_MAX_AGE below.
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
    # A kept connection is checked once before its first query of a request or task, so one the
    # server dropped meanwhile (restart, failover, idle timeout) is replaced rather than failing it.
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # libpq waits for ever on a server that takes the connection and never answers (frozen, or
        # behind a host that drops packets): a command, a task or a request hung with it. A
        # `connect_timeout` given in DATABASE_URL's query string stands.
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
            "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=10)
        )
# The web server takes its PostgreSQL connections from a pool (psycopg_pool, through Django's own
# "pool" option): in the processes of `workers serve`'s gunicorn only (workers_site/gunicorn_conf.py
# marks them), unless WORKERS_DATABASE_POOL is false. A new connection for every request cost more
# than most requests' own work (a server process forked and its catalog caches filled: /healthz
# answered 160-180 requests/s without the pool, 390-410 with), and each request's statements were
# prepared again. Celery's pool processes keep one connection each instead (below), and
# workers_site/celery.py drops the option there too. Not with WORKERS_MCP_IN_PROCESS: each run in
# the web process holds a connection (two, with its heartbeat) for its whole life, which would
# leave a bounded pool none for requests; nor with CONN_MAX_AGE, which Django refuses beside it.
_web_server = os.environ.get("WORKERS_WEB_SERVER") == "gunicorn"
DATABASE_POOL = (
    _web_server
    and env.bool("WORKERS_DATABASE_POOL", default=True)
    and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    and not env.bool("WORKERS_MCP_IN_PROCESS", default=DEFAULTS["WORKERS_MCP_IN_PROCESS"])
)
if DATABASE_POOL and DATABASES["default"]["CONN_MAX_AGE"]:
    if "WORKERS_DATABASE_POOL" in os.environ:
        raise ImproperlyConfigured(
            "WORKERS_DATABASE_POOL keeps the web server's connections in a pool: set CONN_MAX_AGE to 0 "
            "with it, or WORKERS_DATABASE_POOL=false to keep connections per thread instead."
        )
    DATABASE_POOL = False  # CONN_MAX_AGE set on its own: the operator's choice stands


# Seconds a Celery pool process keeps its database connection across tasks (workers_site/celery.py):
# a new PostgreSQL connection for every run was half of a trivial run's cost. 0 closes it after
# each task, as Celery does by default. SQLite's connections are always closed (nothing to save).
CELERY_WORKER_CONN_MAX_AGE = env.int("CELERY_WORKER_CONN_MAX_AGE", default=60)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(RUN_DIR / "static"))
# WhiteNoise warns on every start while nothing has been collected yet; an empty folder is the same.
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names cached for a year and gzip copies; `workers serve` collects them first.
    "staticfiles": {"BACKEND": "workers_site.staticstorage.SiteStaticFilesStorage"},
}
# Without `collectstatic` (a plain `gunicorn` or the test server) files come from the apps
# themselves, under the unhashed names the storage then hands out.
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "/admin/login/"

# Content-Security-Policy on every response (django-csp). Scripts only from our own origin: no
# inline script or event handler anywhere (templates load static files instead). Inline styles
# stay allowed because Django's own admin templates use a few. No form-action: Connect posts to
# us and is redirected to the provider, which form-action would block in some browsers.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
    },
}
# Django's defaults, written out: the callback page's URL holds the code and state.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SESSION_COOKIE_SECURE = PUBLIC_URL.startswith("https://")
CSRF_COOKIE_SECURE = PUBLIC_URL.startswith("https://")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[PUBLIC_URL])

# Celery: the embedded default is kombu's filesystem transport, which needs no server.
# "localhost" only quiets kombu's "No hostname was supplied" warning: the transport ignores it.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://localhost//")
_broker_dir = Path(env("CELERY_BROKER_DIR", default=str(RUN_DIR / "broker")))
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    # kombu's, with each message written whole before a worker can see it (connections/broker.py).
    CELERY_BROKER_TRANSPORT = "connections.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        # kombu sleeps this long whenever a poll finds nothing it may take, including while its
        # prefetch window is full: at its default of 1 s a worker handled about 2 runs a second.
        "polling_interval": env.float("CELERY_BROKER_POLLING_INTERVAL", default=0.1),
    }
CELERY_BROKER_DIR = str(_broker_dir)
# A broker that stops answering without closing its connections (a frozen or failed-over Redis, a
# host that drops packets) held a publish for ever on Redis, and with it a webhook's request,
# `workers exec` or the admin's Run form: kombu's Redis transport sets no socket timeout. There each
# connect and each command is bounded, and a publish is not retried (a retry reconnects and pings,
# one more bound each; redis-py itself replaces a pooled connection the server had closed). On
# RabbitMQ the bound covers the connect and its handshake, as Celery's own 4 s did. A run whose
# message is refused is kept and sent again (connections/runner/runs.py `send`).
_broker_timeout = env.float("CELERY_BROKER_TIMEOUT", default=3.0)
if not _broker_timeout > 0:
    raise ImproperlyConfigured(f"CELERY_BROKER_TIMEOUT must be a number of seconds above 0, not {_broker_timeout}.")
CELERY_BROKER_CONNECTION_TIMEOUT = _broker_timeout
if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "redis+socket://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_timeout": _broker_timeout, "socket_connect_timeout": _broker_timeout}
    CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 0}
if CELERY_BROKER_URL.startswith("redis://"):
    # kombu's, keeping its Redis client object rather than making one per message (connections/broker.py).
    # Not for rediss:// (kombu sets up TLS by the scheme's name) nor redis+socket://: kombu's own there.
    CELERY_BROKER_TRANSPORT = "connections.broker:RedisTransport"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged after it ran, so a killed worker's task is delivered again.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# django-celery-beat's DatabaseScheduler, touching WORKERS_BEAT_HEARTBEAT_FILE on each tick (beat's health check).
CELERY_BEAT_SCHEDULER = "workers_site.beat:HeartbeatScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "refresh-expiring-tokens": {"task": "connections.oauth.refresh_expiring_tokens", "schedule": 60.0},
    "keep-refresh-tokens-alive": {"task": "connections.oauth.keep_refresh_tokens_alive", "schedule": 3600.0},
    "purge-authorization-attempts": {"task": "connections.oauth.purge_authorization_attempts", "schedule": 3600.0},
    "requeue-lost-runs": {"task": "connections.tasks.requeue_lost_runs", "schedule": 60.0},
    "purge-old-runs-and-events": {"task": "connections.tasks.purge_old_records", "schedule": 3600.0},
}

# The app's own settings, WORKERS_*: connections/conf.py holds each default and documents each;
# every one is read from the environment under its own name.
globals().update(from_environment(env))

# `/metrics` answers 404 while this is empty; Prometheus sends it as `Authorization: Bearer ...`.
METRICS_TOKEN = env("METRICS_TOKEN", default=DEFAULTS["METRICS_TOKEN"])
# gunicorn's name for the web threads, read when WORKERS_WEB_THREADS is not set.
if "WORKERS_WEB_THREADS" not in os.environ and "GUNICORN_THREADS" in os.environ:
    WORKERS_WEB_THREADS = env.int("GUNICORN_THREADS")
# The web server's connection pool (DATABASE_POOL, above), sized by the web threads.
if DATABASE_POOL:
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 1,
        # A request's thread holds one for the request (WORKERS_WEB_THREADS at once), MCP calls
        # take theirs beside them; past this, a request waits up to `timeout` seconds for one.
        "max_size": env.int("WORKERS_DATABASE_POOL_SIZE", default=2 * max(1, WORKERS_WEB_THREADS)),
        # As long as a new connection may take (DATABASE_CONNECT_TIMEOUT): with the database down, a
        # request (and /healthz, then 503) fails after that, as it did without the pool.
        "timeout": DATABASES["default"]["OPTIONS"].get("connect_timeout", 10),
    }
    # With CONN_HEALTH_CHECKS (above) Django has the pool check each connection it hands out (an
    # empty query): one the server dropped (restart, failover, idle timeout) is replaced instead
    # of failing the request.

# The sandbox OAuth provider (django-oauth-toolkit) served under /sandbox/.
OAUTH2_PROVIDER = {
    "ACCESS_TOKEN_EXPIRE_SECONDS": env.int("SANDBOX_ACCESS_TOKEN_SECONDS", default=3600),
    "REFRESH_TOKEN_EXPIRE_SECONDS": 30 * 24 * 3600,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "PKCE_REQUIRED": False,
    "SCOPES": {"read": "Read your profile", "items": "Read your items"},
    "DEFAULT_SCOPES": ["read"],
}

# Applies LOGGING, then puts the redaction filter on every handler, Django's own (`django.server`,
# the development server's access log) included; Celery's handlers get it in workers_site/celery.py.
LOGGING_CONFIG = "connections.logging.configure"
# `json`: one JSON object per line (for a log shipper); `plain`: one line of text. Every process.
LOG_FORMAT = env("LOG_FORMAT", default=DEFAULTS["LOG_FORMAT"]).strip().lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
LOGGING = console_config(
    LOG_FORMAT,
    root={"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    loggers={
        # Both log request bodies and token responses at DEBUG.
        "requests_oauthlib": {"level": "WARNING"},
        "oauthlib": {"level": "WARNING"},
        "oauth2_provider": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
)
