"""What each part of offline_sync imports: the admin runs on the engine, and nothing needs drf-spectacular.

Each check runs in a fresh interpreter, since this one has imported everything
already. Its settings are the test project's without drf-spectacular, whose app
would import it.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SETUP = """
import sys

import django
from django.conf import settings

from tests import settings as test_settings

values = {{name: getattr(test_settings, name) for name in dir(test_settings) if name.isupper()}}
values["INSTALLED_APPS"] = [
    {admin!r} if app == "django.contrib.admin" else app for app in values["INSTALLED_APPS"] if app != "drf_spectacular"
]
values["REST_FRAMEWORK"] = {{k: v for k, v in values["REST_FRAMEWORK"].items() if k != "DEFAULT_SCHEMA_CLASS"}}
settings.configure(**values)
django.setup()
"""


def run(code, *, admin="django.contrib.admin", before=""):
    """Run ``code`` in a new Python after ``before`` and ``django.setup()``; fail with its traceback."""
    script = textwrap.dedent(before) + SETUP.format(admin=admin) + textwrap.dedent(code)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_admin_loads_neither_rest_views_nor_drf_spectacular():
    # SimpleAdminConfig: no autodiscovery, which would import the test apps' admin modules too.
    run(
        """
        import offline_sync.admin

        loaded = sorted(name for name in sys.modules if name.startswith(("rest_framework", "drf_spectacular")))
        for name in ("offline_sync.rest_framework.views", "rest_framework.views"):
            assert name not in sys.modules, f"import offline_sync.admin loaded {name}"
        assert not [name for name in loaded if name.startswith("drf_spectacular")], loaded
        """,
        admin="django.contrib.admin.apps.SimpleAdminConfig",
    )


def test_the_views_urls_and_admin_run_without_drf_spectacular():
    # None in sys.modules makes every import of drf_spectacular fail, as when it is not installed.
    run(
        """
        import offline_sync.admin
        import offline_sync.rest_framework.urls
        import offline_sync.rest_framework.views
        from django.urls import resolve
        from rest_framework.schemas.openapi import AutoSchema

        view = resolve("/sync/items-cd/").func.view_class()  # the test project's URLs load
        assert type(view.schema) is AutoSchema, view.schema  # DRF's default
        try:
            from offline_sync.rest_framework.schema import SyncAutoSchema  # noqa: F401
        except ImportError:
            pass
        else:
            raise AssertionError("SyncAutoSchema imported without drf-spectacular")
        """,
        before='import sys\nsys.modules["drf_spectacular"] = None\n',
    )


def test_sync_views_document_themselves_with_drf_spectacular():
    from offline_sync.rest_framework.schema import SyncAutoSchema
    from tests.testapp.views import ItemPullView

    assert type(ItemPullView.schema) is SyncAutoSchema
    view = ItemPullView()
    assert view.schema.view is view
