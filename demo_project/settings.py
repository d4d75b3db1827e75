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

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])

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

DATABASES = {"default": dj_database_url.config(default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
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
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Mobile clients: `Authorization: Token <token>` from /api/auth/token/.
        "rest_framework.authentication.TokenAuthentication",
        # A browser logged in to the admin can try the endpoints too.
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Views choose a scope (throttle_scope); the rates are per user, or per address when anonymous.
    # Counts live in the cache (per process with the default local-memory cache).
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.ScopedRateThrottle"],
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
