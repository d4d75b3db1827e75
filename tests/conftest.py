import os

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def pytest_collection_modifyitems(config, items):
    """Tests marked ``postgres`` skip on SQLite, and fail under CI=true (see scripts/test)."""
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: scripts/test runs them in its PostgreSQL pass")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def make_user(django_user_model):
    from django.contrib.auth.models import Permission

    def make(username="alice", perms=("view_item", "view_note")):
        user = django_user_model.objects.create_user(username=username, password="pw")
        user.user_permissions.set(Permission.objects.filter(codename__in=perms))
        return user

    return make


@pytest.fixture
def api(make_user):
    """An API client authenticated by token as a user with view permissions."""

    def client_for(user=None):
        user = user or make_user()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        client.user = user
        return client

    return client_for


@pytest.fixture
def on_postgres():
    return connection.vendor == "postgresql"
