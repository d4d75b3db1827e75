"""Settings of the demo project, read from the environment.

- ``DJANGO_DEBUG``: ``1``/``true``/``yes`` turns debugging on (default: off).
  ``scripts/demo`` sets it; never set it in production.
- ``DJANGO_SECRET_KEY``: required unless debugging (a built-in, public key is
  used then).
- ``DJANGO_ALLOWED_HOSTS``: comma-separated host names (default when
  debugging: ``localhost,127.0.0.1,[::1]``; otherwise none).
- ``DATABASE_URL``: any URL dj-database-url understands, e.g.
  ``postgres://user:pass@localhost:5432/demo`` (default: SQLite file
  ``db.sqlite3`` at the repository root).
- ``DEMO_AUTH_RATE``, ``DEMO_SYNC_RATE``: DRF throttle rates of token logins
  (per client address, default ``20/min``) and of sync requests (per user,
  default ``1200/min``).
- ``DEMO_KNOWN_PASSWORD_USERS``: ``1`` lets ``load_demo_data`` create its
  admin/admin and mobile/mobile users without debugging (``scripts/serve``
  sets it for the demo; never on a server others can reach). Default: on only
  when debugging.

Production mode (without ``DJANGO_DEBUG``), as docs/deployment.md explains:

- ``DJANGO_SECRET_KEY_FALLBACKS``: comma-separated former keys, still accepted
  for signatures (sync cursors, sessions) while devices move to the new key.
- ``DJANGO_CONN_MAX_AGE``: seconds a database connection is kept between
  requests (default 60; 0 closes it after each request).
  ``DJANGO_CONN_HEALTH_CHECKS``: check a kept connection before reuse (default on).
- ``DATABASE_TRANSACTION_POOLING``: ``1`` when ``DATABASE_URL`` points at a pooler
  in transaction mode (PgBouncer ``pool_mode = transaction``): no server-side
  cursors, no prepared statements.
- ``DJANGO_CACHE``: ``database`` (default: one cache for every worker and machine,
  so DRF's throttles count every request; run ``manage.py createcachetable``) or
  ``locmem`` (per process).
- ``DJANGO_GZIP``: compress responses with ``GZipMiddleware`` (default on; turn it
  off when the proxy in front compresses).
- ``DJANGO_HTTPS``: the site is served over HTTPS only (default on): secure
  cookies, redirects to HTTPS, HSTS for ``DJANGO_HSTS_SECONDS`` (default 3600).
  ``scripts/serve`` turns it off for its plain-HTTP loopback demo.
- ``DJANGO_TRUST_X_FORWARDED_PROTO``: ``1`` behind a proxy that terminates TLS and
  sets ``X-Forwarded-Proto`` (and strips it from what clients send).
- ``DJANGO_NUM_PROXIES``: proxies in front that append to ``X-Forwarded-For``, so
  per-address throttles see the client's address.
- ``DJANGO_STATIC_ROOT``: where ``collectstatic`` puts the static files
  (default ``staticfiles/`` at the repository root).
- ``DJANGO_CSRF_TRUSTED_ORIGINS``: comma-separated origins (``https://sync.example.com``)
  for the admin's forms when the proxy changes the host.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_flag(name, default=False):
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None


def env_list(name, default=()):
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_flag("DJANGO_DEBUG")

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Set DJANGO_SECRET_KEY (a long random string) to run the demo project without debugging, "
            "or set DJANGO_DEBUG=1 to use the built-in development key (development only)."
        )
    SECRET_KEY = "django-insecure-offline-sync-demo-development-key-do-not-use-in-production"

SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "offline_sync",
    "demo_project.catalog",
    "demo_project.crm",
    "demo_project.offline_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Production: WhiteNoise serves the collected static files (the admin's CSS) from every worker,
    # compressed and with far-future cache headers; runserver serves them itself when debugging.
    *([] if DEBUG else ["whitenoise.middleware.WhiteNoiseMiddleware"]),
    # Pulls are JSON that compresses several times over (docs/deployment.md has the figures).
    *(["django.middleware.gzip.GZipMiddleware"] if not DEBUG and env_flag("DJANGO_GZIP", True) else []),
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_project.urls"
WSGI_APPLICATION = "demo_project.wsgi.application"

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
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        # Keeping a connection across requests saves a connect per request; each gunicorn worker
        # holds at most one. 0 when debugging, as before.
        conn_max_age=env_int("DJANGO_CONN_MAX_AGE", 0 if DEBUG else 60),
        conn_health_checks=env_flag("DJANGO_CONN_HEALTH_CHECKS", True),
    )
}
if env_flag("DATABASE_TRANSACTION_POOLING"):
    # A transaction-mode pooler gives each transaction any server connection: nothing may outlive
    # a transaction. Server-side cursors (QuerySet.iterator()) would, and so would prepared
    # statements, which Django's psycopg 3 backend leaves off unless OPTIONS turns them on.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).update(prepare_threshold=None, server_side_binding=False)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where `manage.py collectstatic` gathers the admin's files for a production web server.
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
if not DEBUG:
    # Hashed names (cached forever by browsers) and .gz/.br copies made once, at collectstatic.
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

# DRF's throttles count in the cache: with the local-memory cache, each gunicorn worker counts
# apart, so a rate of 20/min would let 20 per worker through. The database cache is one for every
# worker and machine (`manage.py createcachetable` makes its table).
cache_kind = os.environ.get("DJANGO_CACHE", "locmem" if DEBUG else "database")
if cache_kind == "database":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "demo_cache"}}
elif cache_kind != "locmem":
    raise ImproperlyConfigured(f"DJANGO_CACHE must be 'database' or 'locmem', not {cache_kind!r}.")

if not DEBUG and env_flag("DJANGO_HTTPS", True):
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 3600)  # raise it once HTTPS is known to work
if env_flag("DJANGO_TRUST_X_FORWARDED_PROTO"):
    # Only behind a proxy that sets this header itself: a client could send it otherwise.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# load_demo_data's users have well-known passwords: never without debugging unless asked.
DEMO_KNOWN_PASSWORD_USERS = env_flag("DEMO_KNOWN_PASSWORD_USERS", DEBUG)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Mobile clients: `Authorization: Token <token>` from /api/auth/token/.
        "rest_framework.authentication.TokenAuthentication",
        # A browser logged in to the admin can try the endpoints too.
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Views choose a scope (throttle_scope); the rates are per user, or per address when anonymous.
    # Counts live in the cache (CACHES above).
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.ScopedRateThrottle"],
    # Behind N proxies that append to X-Forwarded-For, per-address throttles need N (default: none).
    "NUM_PROXIES": env_int("DJANGO_NUM_PROXIES", None),
    "DEFAULT_THROTTLE_RATES": {
        "auth": os.environ.get("DEMO_AUTH_RATE", "20/min"),  # token logins: slows password guessing
        "sync": os.environ.get("DEMO_SYNC_RATE", "1200/min"),  # pulls and pushes
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "offline_sync demo API",
    "DESCRIPTION": "Offline data sync endpoints of the offline_sync demo project.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}
